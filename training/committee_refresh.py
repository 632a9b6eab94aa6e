"""A committee measured with one encoder says nothing about the next: measure it again.

A generative decomposer answers by agreement only with the encoder its held-out measurement
names (`metrics["committee"]["partner"]`). When another encoder becomes active (a promotion, a
rollback, a demotion), the serving generative decomposer stops answering by agreement, rightly:
two other students fail on other inputs. Until now it stayed silent until its own next
training. The lifecycle tick now notices that the active pair has no measurement and queues one
on the model queue: the generative decomposer and the active encoder answer the same eval-split
texts (which neither trained on), and the new measurement replaces the old one. Its threshold and
its other figures are not touched: this is not a re-evaluation of the version.

A queued measurement is remembered in the cache for `QUEUED_FOR_S`, so the every-minute tick
queues it once; one lost with its worker is queued again after that.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from boundary.jobs import model_job_options
from boundary.models import Direction, ModelKind, ModelVersion
from boundary.students import BackendUnavailable, load_student
from training.committee import committee_promise, describe_committee
from training.evaluation import predict
from training.pipeline import eval_split_pairs, examples_from_pairs

logger = logging.getLogger(__name__)

QUEUED_FOR_S = 30 * 60


def active_pair_unmeasured() -> tuple[ModelVersion, ModelVersion] | None:
    """The active (generative decomposer, encoder) when the former's committee names another
    encoder or none, else None."""
    active = ModelVersion.objects.active().filter(direction=Direction.DECOMPOSITION)
    generative = active.filter(kind=ModelKind.GENERATIVE).first()
    encoder = active.filter(kind=ModelKind.ENCODER).first()
    if generative is None or encoder is None:
        return None
    if generative.committee.get("partner") == encoder.pk:
        return None
    return generative, encoder


def queue_committee_measurement() -> tuple[int, int] | None:
    """The tick's part: queue a measurement of the active pair once, if it has none."""
    pair = active_pair_unmeasured()
    if pair is None:
        return None
    generative, encoder = pair
    if not cache.add(_queued_key(generative.pk, encoder.pk), True, timeout=QUEUED_FOR_S):
        return None  # queued by an earlier tick, and not yet given up on
    transaction.on_commit(lambda: _enqueue(generative.pk, encoder.pk))
    return generative.pk, encoder.pk


def measure_committee(generative_id: int, encoder_id: int) -> dict[str, Any] | None:
    """Measure the pair on this install's eval split and store it on the generative version.

    Returns the measurement, or None when the pair is no longer the active one (a later
    promotion won) or there is nothing to measure on.
    """
    pair = active_pair_unmeasured()
    if pair is None or (pair[0].pk, pair[1].pk) != (generative_id, encoder_id):
        return None
    generative, encoder = pair
    examples = examples_from_pairs(eval_split_pairs(Direction.DECOMPOSITION, ModelKind.GENERATIVE))
    if not examples:
        return None
    try:
        student = load_student(generative.student_spec())
        partner = load_student(encoder.student_spec())
    except BackendUnavailable as exc:
        logger.warning("committee of v%s and v%s not measured: %s", generative_id, encoder_id, exc)
        return None
    predictions = predict(student, Direction.DECOMPOSITION, examples)
    promise = committee_promise(
        predictions, examples, partner, encoder.pk, settings.VALENCE_CALIBRATION_TARGET
    )
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=generative.pk)
        version.metrics = {**(version.metrics or {}), "committee": promise}
        # save(), not update(): the serving cache listens to ModelVersion's post_save.
        version.save(update_fields=["metrics", "updated_at"])
    logger.info("v%s: %s", generative.pk, describe_committee(promise))
    return promise


def _queued_key(generative_id: int, encoder_id: int) -> str:
    return f"valence:committee-queued:v{generative_id}:v{encoder_id}"


def _enqueue(generative_id: int, encoder_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "training.tasks.measure_committee",
        generative_id,
        encoder_id,
        task_name=f"committee of v{generative_id} with v{encoder_id}",
        **model_job_options(),
    )
