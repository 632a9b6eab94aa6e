"""When to train: count the new eligible pairs of each direction and queue what is due.

The scheduled task (`training.tasks.reap_and_queue_trainings`, every minute) calls
`queue_due_trainings`; nothing here runs on the request path. `queue_training` is also the
door for manual and bootstrap trainings.
"""

from __future__ import annotations

import logging
import platform
import sys
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from boundary.jobs import model_job_options
from boundary.models import (
    IN_FLIGHT,
    BoundaryCall,
    Direction,
    ModelKind,
    ModelVersion,
    VersionStatus,
)
from training.models import TrainingRun

logger = logging.getLogger(__name__)


def serving_backend() -> str:
    """The runtime a new generative version is trained for (and later served by)."""
    choice: str = settings.VALENCE_GENERATIVE_BACKEND
    if choice != "auto":
        return choice
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mlx"
    return "onnx"


def latest_watermark(direction: str, kind: str = ModelKind.GENERATIVE) -> int:
    mark: int | None = ModelVersion.objects.filter(direction=direction, kind=kind).aggregate(
        mark=Max("data_watermark")
    )["mark"]
    return mark or 0


def new_eligible_pairs(direction: str, kind: str = ModelKind.GENERATIVE) -> int:
    """Eligible calls stored since the data the last training of `kind` (any outcome) saw."""
    return (
        BoundaryCall.objects.eligible_for_training(direction, settings.VALENCE_TRAIN_QUALITY_FLOOR)
        .filter(pk__gt=latest_watermark(direction, kind))
        .count()
    )


def trainable_kinds(direction: str) -> dict[str, int]:
    """Kind → how many new eligible pairs trigger its next training in `direction`.

    The encoder only decomposes, and needs far more data than a LoRA: its first training
    waits for VALENCE_ENCODER_TRAIN_EVERY pairs (10,000 by default), and so does each retrain.
    """
    kinds = {str(ModelKind.GENERATIVE): settings.VALENCE_TRAIN_EVERY}
    if direction == Direction.DECOMPOSITION:
        kinds[str(ModelKind.ENCODER)] = settings.VALENCE_ENCODER_TRAIN_EVERY
    return kinds


def auto_trained(direction: str, kind: str) -> bool:
    """Whether the automatic trigger trains this student (VALENCE_AUTO_TRAIN; empty: all)."""
    chosen = settings.VALENCE_AUTO_TRAIN
    return not chosen or f"{direction}:{kind}" in chosen


def maybe_queue_training(direction: str) -> list[ModelVersion]:
    """Per kind, queue a training once enough new eligible pairs exist and none is in flight."""
    queued = []
    for kind, every in trainable_kinds(direction).items():
        if not auto_trained(direction, kind):
            continue
        in_flight = ModelVersion.objects.filter(
            direction=direction, kind=kind, status__in=IN_FLIGHT
        )
        if in_flight.exists() or new_eligible_pairs(direction, kind) < every:
            continue
        version = queue_training(direction, kind=kind, trigger=TrainingRun.Trigger.AUTOMATIC)
        if version is not None:
            logger.info("queued training of v%s (%s %s)", version.pk, direction, kind)
            queued.append(version)
    return queued


def queue_due_trainings() -> list[ModelVersion]:
    """The automatic trigger for every direction (the scheduled task reaps before it)."""
    return [
        version for direction in Direction.values for version in maybe_queue_training(direction)
    ]


def queue_training(
    direction: str,
    *,
    trigger: str,
    kind: str = ModelKind.GENERATIVE,
    acting_user: Any = None,
    config: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> ModelVersion | None:
    """Create a queued version and its run; None when one is already in flight."""
    if kind not in trainable_kinds(direction):
        raise ValueError(f"a {kind} model cannot be trained for {direction}")
    user = acting_user if getattr(acting_user, "pk", None) else None
    encoder = kind == ModelKind.ENCODER
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                direction=direction,
                kind=kind,
                backend="onnx" if encoder else serving_backend(),
                base_model=(
                    settings.VALENCE_ENCODER_BASE_MODEL
                    if encoder
                    else settings.VALENCE_BASE_MODELS[direction]
                ),
                status=VersionStatus.QUEUED,
                created_by=user,
                # Claimed now so that the trigger does not fire again for the same pairs.
                data_watermark=BoundaryCall.objects.filter(direction=direction).aggregate(
                    mark=Max("pk")
                )["mark"],
            )
            run = TrainingRun.objects.create(version=version, trigger=trigger, config=config or {})
            if enqueue:
                transaction.on_commit(lambda: _enqueue(run))
    except IntegrityError:  # the one-training-in-flight constraint: another worker won
        return None
    return version


def _enqueue(run: TrainingRun) -> None:
    from django_q.tasks import async_task

    task_id = async_task(
        "training.tasks.train_version",
        run.version_id,
        task_name=f"train v{run.version_id} {run.version.direction} {run.version.kind}",
        **model_job_options(),
    )
    TrainingRun.objects.filter(pk=run.pk).update(task_id=str(task_id or ""))
