"""A second look for candidates the gate refused for want of evidence, on traffic they never saw.

The gate lets a version answer alone only once its confidence threshold *shows* the target
agreement (a one-sided 95 % lower bound, training.evaluation.reaches). On a young deployment
the eval split is small (10 % of the calls), so a good student is refused because about 50
right answers in a row cannot be had from 150 examples (the Food flywheel: encoders at Strict
F1 0.845 refused twice, 0 % local). Meanwhile every call the LLM answers is a fresh label the
candidate never trained on, which is how online distillation ("neural caching", Ramírez et al.
2024) keeps its students honest.

So once `VALENCE_RECALIBRATE_EVERY` such labels have arrived since a candidate was last
judged, the every-minute tick queues a `Recalibration`: the worker evaluates the candidate (and
the active version of its kind, on the same examples) on its eval split plus every newer
teacher answer that shares no text and no triple set with anything it could have trained on,
calibrates cross-fitted as at training time, and puts it through the same gate.

Only the newest ready candidate of a direction and kind, refused for calibration alone, that its
training would have promoted by itself, is looked at; none while a newer training is in flight.
The new labels are the calls the active stages could not answer, so once a version serves they
lean towards hard inputs: the threshold is then chosen on harder examples than it will serve,
which errs on the side of asking the LLM.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from boundary.jobs import model_job_options
from boundary.models import (
    IN_FLIGHT,
    BoundaryCall,
    ModelVersion,
    VersionStatus,
)
from boundary.registry import PromotionRefused, do_promote, gate_verdict, misses_target
from boundary.students import load_student
from training.datasets import TrainingPair, deduplicate, keys_of, stored_pairs
from training.evaluation import deliver, evaluate
from training.models import Recalibration, TrainingRun
from training.pipeline import (
    describe_calibration,
    eval_cap,
    evaluate_version,
    examples_from_pairs,
    round_trip_decomposer,
)

logger = logging.getLogger(__name__)

IN_FLIGHT_RECALIBRATION = [Recalibration.Status.QUEUED, Recalibration.Status.RUNNING]
# The fewest answers a threshold must give on labels newer than its choice to be judged on them.
TIME_HELD_OUT_MIN_ANSWERED = 10


def evidence_pairs(version: ModelVersion) -> list[TrainingPair]:
    """Labelled pairs `version` never trained on: its eval split, and every later pair that
    shares no text or triple set with a train-split pair stored up to its data watermark (a
    superset of what it trained on, so nothing it saw can leak in)."""
    mark = version.data_watermark or 0
    stored = stored_pairs(version.direction)  # repeats too: deduplication keeps the newest
    seen = keys_of(p for p in stored if p.split == "train" and p.call_id <= mark)
    return [
        p
        for p in deduplicate(stored)
        if p.split == "eval" or (p.call_id > mark and not seen.touches(p))
    ]


def chosen_on(version: ModelVersion) -> int:
    """How many examples its current threshold was chosen on."""
    return int(version.calibration.get("chosen_on") or version.eval_count or 0)


def candidate(direction: str, kind: str) -> ModelVersion | None:
    """The version of (direction, kind) that more evidence could get past the gate, if any."""
    versions = ModelVersion.objects.filter(direction=direction, kind=kind)
    if versions.filter(status__in=IN_FLIGHT).exists():
        return None  # a newer training will be judged soon
    newest = versions.exclude(status=VersionStatus.FAILED).order_by("-pk").first()
    if (
        newest is None
        or newest.status != VersionStatus.READY
        or newest.is_active
        or newest.data_watermark is None
        or newest.recalibrations.filter(status__in=IN_FLIGHT_RECALIBRATION).exists()
        or not _would_promote_itself(newest)
    ):
        return None
    return newest if gate_verdict(newest).refused_only_for_calibration else None


def evidence_due(version: ModelVersion) -> int | None:
    """The number of evidence pairs when enough new ones arrived since it was last judged.

    Since its last look (the newest label that look read), else since its training (what its
    threshold was chosen on). Not "chosen on + every": a look reads at most `eval_cap(kind)`
    pairs, so once the evidence outgrew the cap that count never caught up, and a generative
    candidate was judged again every tick, minutes of the worker each time, with no new label.
    """
    every = settings.VALENCE_RECALIBRATE_EVERY
    last = (
        version.recalibrations.filter(
            status=Recalibration.Status.DONE, through_call_id__isnull=False
        )
        .order_by("-pk")
        .first()
    )
    since: int = (last.through_call_id if last is not None else None) or version.data_watermark or 0
    # Cheap upper bound first: every eligible call past that point (plus, before any look, the
    # eval split its threshold was chosen on).
    newer = (
        BoundaryCall.objects.eligible_for_training(
            version.direction, settings.VALENCE_TRAIN_QUALITY_FLOOR
        )
        .filter(pk__gt=since)
        .count()
    )
    if last is not None:
        if newer < every:
            return None
        pairs = evidence_pairs(version)
        new = sum(1 for p in pairs if p.call_id > since)
        return len(pairs) if new >= every else None
    needed = chosen_on(version) + every
    if newer + version.eval_count < needed:
        return None
    count = len(evidence_pairs(version))
    return count if count >= needed else None


def queue_due_recalibrations() -> list[Recalibration]:
    """The tick's part: reap stale recalibrations, then queue one per due candidate."""
    reap_stale_recalibrations()
    if settings.VALENCE_RECALIBRATE_EVERY <= 0 or not settings.VALENCE_AUTO_PROMOTE:
        return []
    queued = []
    pairs = ModelVersion.objects.values_list("direction", "kind").distinct().order_by()
    for direction, kind in sorted(set(pairs)):
        version = candidate(direction, kind)
        if version is None or (evidence := evidence_due(version)) is None:
            continue
        try:
            with transaction.atomic():
                recalibration = Recalibration.objects.create(version=version, evidence=evidence)
                transaction.on_commit(partial(_enqueue, recalibration))
        except IntegrityError:  # another tick queued it first
            continue
        logger.info("queued recalibration of v%s on %s pairs", version.pk, evidence)
        queued.append(recalibration)
    return queued


def reap_stale_recalibrations() -> int:
    """Fail recalibrations the worker cannot still be running (it died or lost the task)."""
    cluster: dict[str, Any] = settings.Q_CLUSTER  # a task older than its retry is lost
    stale_before = timezone.now() - timedelta(seconds=int(cluster["retry"]))
    return Recalibration.objects.filter(
        status__in=IN_FLIGHT_RECALIBRATION, created_at__lt=stale_before
    ).update(
        status=Recalibration.Status.FAILED,
        outcome="never finished: the worker stopped or lost the task",
        finished_at=timezone.now(),
    )


def run_recalibration(recalibration_id: int) -> Recalibration:
    """Evaluate and calibrate on the evidence, then try the gate (the worker's task)."""
    claimed = Recalibration.objects.filter(
        pk=recalibration_id, status=Recalibration.Status.QUEUED
    ).update(status=Recalibration.Status.RUNNING)
    recalibration = Recalibration.objects.select_related("version").get(pk=recalibration_id)
    if not claimed:
        return recalibration
    version = recalibration.version
    try:
        pairs = sorted(evidence_pairs(version), key=lambda p: (p.tier, -p.call_id))
        pairs = sorted(pairs[: eval_cap(version.kind)], key=lambda p: p.call_id)
        previous = _previous_look(recalibration)
        metrics = evaluate_version(
            version,
            examples_from_pairs(pairs),
            source=f"recalibration: {len(pairs)} labelled pairs it never trained on",
        )
        version.refresh_from_db()
        Recalibration.objects.filter(pk=recalibration.pk).update(
            threshold=version.threshold, through_call_id=max(p.call_id for p in pairs)
        )
        outcome, promoted = describe_calibration(metrics), False
        if previous is not None and not _held_out_answers(version):
            outcome += "; " + _measure_previous_threshold(version, previous, pairs)
        try:
            do_promote(version, reason=f"automatic after recalibrating on {len(pairs)} new pairs")
            promoted = True
            outcome += "; promoted: the gate passed"
        except PromotionRefused as refused:
            outcome += f"; not promoted: {refused}"
        _finish(recalibration, Recalibration.Status.DONE, outcome, version.is_calibrated, promoted)
    except Exception as exc:
        logger.exception("recalibration of v%s failed", version.pk)
        _finish(recalibration, Recalibration.Status.FAILED, f"{type(exc).__name__}: {exc}")
    recalibration.refresh_from_db()
    return recalibration


def _previous_look(recalibration: Recalibration) -> Recalibration | None:
    """The last look at the same version that chose a threshold."""
    return (
        recalibration.version.recalibrations.filter(
            status=Recalibration.Status.DONE,
            threshold__isnull=False,
            through_call_id__isnull=False,
            pk__lt=recalibration.pk,
        )
        .order_by("-pk")
        .first()
    )


def _held_out_answers(version: ModelVersion) -> int:
    return int((version.calibration.get("held_out") or {}).get("answered") or 0)


def _measure_previous_threshold(
    version: ModelVersion, previous: Recalibration, pairs: list[TrainingPair]
) -> str:
    """Held out by time: the threshold the previous look chose, measured on the labels that
    arrived since (it never saw them). Cross-fitting halves the evidence, so on a young
    deployment neither half can show the target; this spends none of it. When it answered at
    least `TIME_HELD_OUT_MIN_ANSWERED` of them and did not clearly miss the target (the upper
    bound of its interval reaches it, as the gate asks of any held-out promise), the version
    serves with *that* threshold and this measurement as its promise."""
    newer = [p for p in pairs if p.call_id > (previous.through_call_id or 0)]
    if not newer or previous.threshold is None:
        return "no labels since the previous look to measure its threshold on"
    examples = examples_from_pairs(newer)
    report = evaluate(
        load_student(version.student_spec()),
        version.direction,
        examples,
        target=settings.VALENCE_CALIBRATION_TARGET,
        z=settings.VALENCE_CALIBRATION_Z,
        decomposer=round_trip_decomposer(version.direction)[0],
    )
    per_triple = version.calibration.get("per_triple", True) is not False
    measure = partial(deliver, report.predictions, examples, report.agreements)
    delivered = measure(threshold=previous.threshold, keeps_triples=per_triple)
    target = float(settings.VALENCE_CALIBRATION_TARGET)
    interval = delivered["agreement_interval"]
    summary = (
        f"the previous look's threshold {previous.threshold:.3f} answered "
        f"{delivered['answered']} of {delivered['count']} labels since"
    )
    if delivered["answered"] < TIME_HELD_OUT_MIN_ANSWERED or interval is None:
        return summary + ": too few to measure"
    summary += f" at {delivered['agreement']:.1%} ({interval[0]:.1%}–{interval[1]:.1%})"
    if misses_target(delivered, target):
        return summary + ": below the target"
    if per_triple and misses_target(delivered.get("completed") or {}, target):
        # Its whole answers held; the answers it would complete did not: keep no triple of those.
        completed = delivered["completed"]
        summary += (
            f"; the {completed['answers']} unsure answers it would complete were right only "
            f"{completed['agreement']:.1%}, so it keeps no triple of an unsure answer"
        )
        per_triple, delivered = False, measure(threshold=previous.threshold, keeps_triples=False)
    calibration = {
        **version.calibration,
        "per_triple": per_triple,
        "calibrated": True,
        "threshold": previous.threshold,
        "method": f"chosen on {previous.evidence} labels, measured on the {len(examples)} since",
        "measured_on": delivered["count"],
        "held_out": delivered,
        "expected_fallback_rate": delivered["fallback_rate"],
        "accepted_agreement": delivered["agreement"],
    }
    version.metrics = {**version.metrics, "calibration": calibration}
    version.threshold = previous.threshold
    version.expected_fallback_rate = delivered["fallback_rate"]
    version.save(update_fields=["metrics", "threshold", "expected_fallback_rate", "updated_at"])
    return summary + ": held out by time, it serves with that threshold"


def _finish(
    recalibration: Recalibration,
    status: str,
    outcome: str,
    calibrated: bool | None = None,
    promoted: bool | None = None,
) -> None:
    Recalibration.objects.filter(pk=recalibration.pk).update(
        status=status,
        outcome=outcome,
        calibrated=calibrated,
        promoted=promoted,
        finished_at=timezone.now(),
    )
    logger.info("recalibration of v%s: %s", recalibration.version_id, outcome)


def _would_promote_itself(version: ModelVersion) -> bool:
    """As at the end of its training: automatic and bootstrap runs promote themselves, manual
    ones only when asked to (an imported version, with no run, never)."""
    run = TrainingRun.objects.filter(version=version).first()
    if run is None:
        return False
    return bool(run.config.get("promote", run.trigger != TrainingRun.Trigger.MANUAL))


def _enqueue(recalibration: Recalibration) -> None:
    from django_q.tasks import async_task

    async_task(
        "training.tasks.recalibrate_version",
        recalibration.pk,
        task_name=f"recalibrate v{recalibration.version_id} on {recalibration.evidence}",
        **model_job_options(),
    )
