"""Writes that change a stored call. Views call these; they never write models directly."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from boundary.models import BoundaryCall, ReviewStatus
from boundary.triples import Triple, triples_to_json


@transaction.atomic
def do_record_feedback(
    call: BoundaryCall,
    *,
    quality_score: float | None = None,
    corrected_output: list[Triple] | str | None = None,
    verdict: str | None = None,
    acting_user: Any,
) -> BoundaryCall:
    """Store a score, a correction (beside the original output, never over it) or a verdict."""
    call = BoundaryCall.objects.select_for_update().get(pk=call.pk)
    if quality_score is not None:
        call.quality_score = quality_score
    if corrected_output is not None:
        call.corrected_output = (
            corrected_output
            if isinstance(corrected_output, str)
            else triples_to_json(corrected_output)
        )
        call.review_status = ReviewStatus.CORRECTED
    elif verdict == "reject":
        call.review_status = ReviewStatus.REJECTED
    elif verdict == "accept":
        call.review_status = ReviewStatus.ACCEPTED
    call.reviewed_by = acting_user
    call.reviewed_at = timezone.now()
    call.save(
        update_fields=[
            "quality_score",
            "corrected_output",
            "review_status",
            "reviewed_by",
            "reviewed_at",
        ]
    )
    return call
