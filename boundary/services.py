"""Writes that change a stored call. Views call these; they never write models directly."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from boundary.models import BoundaryCall, ReviewStatus
from boundary.triples import Triple, triples_to_json


class StaleReview(Exception):
    """Someone else reviewed the call since this reviewer loaded it; nothing was written."""

    def __init__(self, call: BoundaryCall) -> None:
        who = call.reviewed_by.get_username() if call.reviewed_by else "someone"
        super().__init__(
            f"Call {call.pk} was changed by {who} while you were looking at it; "
            "reload it to see their review before changing it."
        )
        self.call = call


@transaction.atomic
def do_record_feedback(
    call: BoundaryCall,
    *,
    quality_score: float | None = None,
    corrected_output: list[Triple] | str | None = None,
    verdict: str | None = None,
    acting_user: Any,
    expected_revision: int | None = None,
) -> BoundaryCall:
    """Store a score, a correction (beside the original output, never over it) or a verdict.

    `expected_revision` is the `review_revision` the reviewer saw: if the call has been
    reviewed since, StaleReview is raised instead of overwriting that review (optimistic
    concurrency; the API, which has no form to go stale, passes None). Every write bumps the
    revision and releases the console's claim on the call.
    """
    locked = BoundaryCall.objects.select_for_update(of=("self",)).select_related("reviewed_by")
    call = locked.get(pk=call.pk)
    if expected_revision is not None and call.review_revision != expected_revision:
        raise StaleReview(call)
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
    call.review_revision = F("review_revision") + 1
    call.claimed_by = None
    call.claimed_until = None
    call.save(
        update_fields=[
            "quality_score",
            "corrected_output",
            "review_status",
            "reviewed_by",
            "reviewed_at",
            "review_revision",
            "claimed_by",
            "claimed_until",
        ]
    )
    call.refresh_from_db(fields=["review_revision"])
    return call
