"""The automatic retraining trigger: every stored LLM answer may tip a direction over the edge."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from boundary.models import BoundaryCall, ServedBy

logger = logging.getLogger(__name__)


@receiver(post_save, sender=BoundaryCall, dispatch_uid="training.trigger")
def _call_stored(sender: type, instance: BoundaryCall, created: bool, **kwargs: Any) -> None:
    if created and instance.served_by == ServedBy.TEACHER:
        transaction.on_commit(lambda: _check(instance.direction))


def _check(direction: str) -> None:
    from training.pipeline import maybe_queue_training

    try:
        versions = maybe_queue_training(direction)
    except Exception:  # the trigger must never break the request that stored the call
        logger.exception("could not check whether %s needs training", direction)
        return
    for version in versions:
        logger.info("queued training of v%s (%s %s)", version.pk, direction, version.kind)
