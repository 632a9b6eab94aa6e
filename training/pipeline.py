"""Data → training → export → evaluation → calibration → registry → (gated) promotion.

`queue_training` creates a queued ModelVersion and hands its id to a django-q2 worker;
`run_training` is what the worker (or `train_boundary --sync`) executes. Every state change is
written as it happens, so the console can show live progress and a crash leaves a clear record.
"""

from __future__ import annotations

import logging
import platform
import shutil
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from boundary.models import (
    IN_FLIGHT,
    BoundaryCall,
    Direction,
    ModelKind,
    ModelVersion,
    VersionStatus,
)
from boundary.prompts import (
    decomposition_prompt,
    decomposition_target,
    recomposition_prompt,
    recomposition_target,
)
from boundary.registry import PromotionRefused, do_promote
from boundary.students import load_student
from training.datasets import TrainingPair, eligible_pairs, held_out_keys, split_pairs
from training.evaluation import Decomposer, Example, at_threshold, evaluate
from training.models import Evaluation, TrainingRun

logger = logging.getLogger(__name__)

# A run whose worker has not reported for this long is presumed dead (killed, OOM, reboot).
STALE_AFTER = timedelta(minutes=30)


def serving_backend() -> str:
    choice = settings.VALENCE_GENERATIVE_BACKEND
    if choice != "auto":
        return choice
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mlx"
    return "onnx"


def latest_watermark(direction: str, kind: str = ModelKind.GENERATIVE) -> int:
    return (
        ModelVersion.objects.filter(direction=direction, kind=kind).aggregate(
            mark=Max("data_watermark")
        )["mark"]
        or 0
    )


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
    kinds = {ModelKind.GENERATIVE: settings.VALENCE_TRAIN_EVERY}
    if direction == Direction.DECOMPOSITION:
        kinds[ModelKind.ENCODER] = settings.VALENCE_ENCODER_TRAIN_EVERY
    return kinds


def maybe_queue_training(direction: str) -> list[ModelVersion]:
    """The automatic trigger: per kind, queue a training once enough new eligible pairs exist."""
    reap_stale_runs()
    queued = []
    for kind, every in trainable_kinds(direction).items():
        in_flight = ModelVersion.objects.filter(
            direction=direction, kind=kind, status__in=IN_FLIGHT
        )
        if in_flight.exists() or new_eligible_pairs(direction, kind) < every:
            continue
        version = queue_training(direction, kind=kind, trigger=TrainingRun.Trigger.AUTOMATIC)
        if version is not None:
            queued.append(version)
    return queued


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
    )
    TrainingRun.objects.filter(pk=run.pk).update(task_id=str(task_id or ""))


def reap_stale_runs() -> int:
    """Fail runs whose worker stopped reporting, so they no longer block new trainings."""
    cutoff = timezone.now() - STALE_AFTER
    stale = TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff
    ).select_related("version")
    count = 0
    for run in stale:
        _fail(run, "the worker stopped reporting (killed or restarted?)")
        count += 1
    return count


def run_training(version_id: int) -> ModelVersion:
    """Train, export, evaluate, calibrate and (if allowed and the gate agrees) promote."""
    version = ModelVersion.objects.get(pk=version_id)
    run = version.training_run
    if run.status != TrainingRun.Status.PENDING:
        raise RuntimeError(f"v{version_id}'s run is {run.status}; only pending runs start")
    if run.cancel_requested:
        _fail(run, "cancelled before it started", status=TrainingRun.Status.CANCELLED)
        version.refresh_from_db()
        return version
    _update(run, status=TrainingRun.Status.RUNNING, started_at=timezone.now())
    _set_status(version, VersionStatus.TRAINING)
    try:
        _train_evaluate_register(version, run)
    except Exception as exc:
        from training.trainers.common import Cancelled

        if isinstance(exc, Cancelled):
            _fail(run, str(exc), status=TrainingRun.Status.CANCELLED)
        else:
            logger.exception("training v%s failed", version_id)
            _fail(run, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        version.refresh_from_db()
        return version
    version.refresh_from_db()
    # Automatic and bootstrap runs promote themselves (when allowed); manual ones on request.
    promote = run.config.get("promote", run.trigger != TrainingRun.Trigger.MANUAL)
    if settings.VALENCE_AUTO_PROMOTE and promote:
        try:
            do_promote(version, reason=f"automatic after a {run.trigger} training")
            _log(run, "promoted: the gate passed")
        except PromotionRefused as refused:
            _log(run, f"not promoted: {refused}")
        version.refresh_from_db()
    return version


def _train_evaluate_register(version: ModelVersion, run: TrainingRun) -> None:
    from training.base_models import resolve_base_model

    direction = version.direction
    split = split_pairs(
        eligible_pairs(direction),
        held_out=held_out_keys(),
        max_train=run.config.get("max_train_pairs"),
        max_eval=run.config.get("max_eval_pairs") or settings.VALENCE_EVAL_MAX_PAIRS,
    )
    train, held_out = split.train, split.evaluation
    if not train:
        raise ValueError(f"no eligible {direction} training pairs")
    watermark = max(p.call_id for p in train + held_out)
    ModelVersion.objects.filter(pk=version.pk).update(
        train_count=len(train), eval_count=len(held_out), data_watermark=watermark
    )
    _log(
        run,
        f"{len(train)} training pairs, {len(held_out)} evaluation pairs; {split.withheld} "
        "train-split pairs withheld (they share a text or triple set with the eval split)",
    )

    base = resolve_base_model(version.base_model, settings.VALENCE_MODEL_DIR)
    artifact = Path(settings.VALENCE_MODEL_DIR) / f"v{version.pk}"
    if artifact.exists():
        shutil.rmtree(artifact)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_path=str(artifact))
    if version.kind == ModelKind.ENCODER:
        _train_encoder(run, base, train, artifact)
    else:
        _train_generative(version, run, base, train, artifact)
    version.refresh_from_db()

    _set_status(version, VersionStatus.EVALUATING)
    report = evaluate_version(version, examples_from_pairs(held_out), source="eval split")
    _log(run, describe_calibration(report))
    _set_status(version, VersionStatus.READY)
    _update(run, status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now())


def _train_generative(
    version: ModelVersion, run: TrainingRun, base: str, train: list[TrainingPair], artifact: Path
) -> None:
    from training.trainers.generative import TrainConfig, train_lora

    direction = version.direction
    config = TrainConfig(**{**_default_config(), **run.config.get("train", {})})
    run.config = {**run.config, "train": config.as_dict(), "train_pairs": len(train)}
    _update(run, config=run.config)
    trainer = train_lora
    if version.backend == "mlx":  # trained by the runtime that serves it
        from boundary.mlx_backend import train_lora_mlx

        trainer = train_lora_mlx
    result = trainer(
        base,
        [_example_text(direction, pair) for pair in train],
        artifact,
        config,
        on_progress=_ProgressWriter(run),
        should_stop=_CancelCheck(run),
    )
    _log(
        run,
        f"trained {result.steps} steps on {result.examples} examples in {result.seconds:.0f} s "
        f"({result.device}); final loss {result.final_loss:.3f}; "
        f"{result.skipped_too_long} too long",
    )
    if version.backend == "onnx":
        from boundary.generation import export_ort_genai

        started = time.perf_counter()
        precision = settings.VALENCE_ORT_PRECISION
        export_ort_genai(result.merged_dir, artifact / "ort-genai", precision=precision)
        elapsed = time.perf_counter() - started
        _log(run, f"exported to onnxruntime-genai {precision} in {elapsed:.0f} s")


def _train_encoder(run: TrainingRun, base: str, train: list[TrainingPair], artifact: Path) -> None:
    from training.trainers.encoder import EncoderConfig, train_encoder

    config = EncoderConfig(**{**_encoder_config(), **run.config.get("train", {})})
    run.config = {**run.config, "train": config.as_dict(), "train_pairs": len(train)}
    _update(run, config=run.config)
    result = train_encoder(
        base,
        [(str(pair.source), list(pair.target)) for pair in train],
        artifact,
        config,
        on_progress=_ProgressWriter(run),
        should_stop=_CancelCheck(run),
    )
    _log(
        run,
        f"trained {result.steps} steps on {result.examples} examples in {result.seconds:.0f} s "
        f"({result.device}); final loss {result.final_loss:.3f}; {result.predicates} predicates; "
        f"{result.aligned_share:.1%} of triples aligned to their text; exported to ONNX"
        + (" (int8)" if config.quantize else ""),
    )


def evaluate_version(
    version: ModelVersion, examples: list[Example], *, source: str, calibrate: bool = True
) -> dict[str, Any]:
    """Score `version` on `examples`; on the eval split, also calibrate and compare with the
    active version on the very same examples (the gate compares like with like)."""
    student = load_student(version.student_spec())
    decomposer, decomposer_name = round_trip_decomposer(version.direction)
    report = evaluate(
        student,
        version.direction,
        examples,
        target=settings.VALENCE_CALIBRATION_TARGET,
        z=settings.VALENCE_CALIBRATION_Z,
        decomposer=decomposer,
        decomposer_name=decomposer_name,
    )
    metrics = dict(report.metrics)
    if version.threshold is not None:
        metrics["at_threshold"] = at_threshold(report, examples, version.threshold)
    Evaluation.objects.create(
        version=version,
        data_source=source,
        data_fingerprint=metrics["data_fingerprint"],
        count=len(examples),
        metrics=metrics,
        latency_p50_ms=report.latency_p50_ms,
        latency_p95_ms=report.latency_p95_ms,
    )
    if not calibrate:
        return metrics
    metrics["latency_p50_ms"] = report.latency_p50_ms
    metrics["latency_p95_ms"] = report.latency_p95_ms
    active = ModelVersion.objects.active().filter(direction=version.direction, kind=version.kind)
    baseline = active.exclude(pk=version.pk).first()
    if baseline is not None and examples:
        baseline_report = evaluate(
            load_student(baseline.student_spec()),
            baseline.direction,
            examples,
            target=settings.VALENCE_CALIBRATION_TARGET,
            z=settings.VALENCE_CALIBRATION_Z,
            decomposer=decomposer,
            decomposer_name=decomposer_name,
        )
        metrics["baseline"] = {
            "version": baseline.pk,
            "headline": baseline_report.metrics["headline"],
            "data_fingerprint": baseline_report.metrics["data_fingerprint"],
        }
    version.metrics = metrics
    version.threshold = report.calibration.threshold
    version.expected_fallback_rate = report.calibration.expected_fallback_rate
    version.save(update_fields=["metrics", "threshold", "expected_fallback_rate", "updated_at"])
    return metrics


def round_trip_decomposer(direction: str) -> tuple[Decomposer | None, str]:
    """For recomposition, the best local decomposer (the cheapest active decomposition stage,
    as the cascade would ask it), which turns generated texts back into triples."""
    if direction != Direction.RECOMPOSITION:
        return None, ""
    versions = ModelVersion.objects.serving_order(Direction.DECOMPOSITION)
    if not versions:
        return None, ""
    decomposer = versions[0]
    try:
        backend = load_student(decomposer.student_spec())
    except Exception:  # a broken decomposer leaves only the entity pre-check, labelled so
        logger.exception("cannot load v%s to round-trip recompositions", decomposer.pk)
        return None, ""
    return (lambda text: backend.decompose(text).output), f"v{decomposer.pk} ({decomposer.kind})"


def describe_calibration(metrics: dict[str, Any]) -> str:
    """One log line: the headline, the threshold, and what it delivered held apart."""
    calibration = metrics["calibration"]
    line = f"{metrics['headline_metric']} {metrics['headline']:.3f}; "
    if not calibration["calibrated"]:
        return line + (
            f"uncalibrated: no threshold reached {calibration['target']:.0%} agreement on "
            f"{calibration['chosen_on']} examples, so it never answers alone"
        )
    line += f"threshold {calibration['threshold']:.3f} (chosen on {calibration['chosen_on']})"
    held_out = calibration["held_out"]
    if held_out is None:
        return line + "; too few examples to measure it held apart"
    agreement = held_out["agreement"]
    low, high = held_out["agreement_interval"] or (0.0, 0.0)
    return line + (
        f"; on {held_out['count']} held-out examples it answers {1 - held_out['fallback_rate']:.1%}"
        + (
            f" at {agreement:.1%} agreement (95 % CI {low:.1%}–{high:.1%})"
            if agreement is not None
            else ""
        )
    )


def examples_from_pairs(pairs: list[TrainingPair]) -> list[Example]:
    """Group pairs by input: every target of one input is a reference for it."""
    grouped: dict[str, list[TrainingPair]] = {}
    for pair in pairs:
        grouped.setdefault(pair.input_hash, []).append(pair)
    return [
        Example(source=group[0].source, references=tuple(p.target for p in group))
        for group in grouped.values()
    ]


def _example_text(direction: str, pair: TrainingPair) -> tuple[str, str]:
    if direction == Direction.DECOMPOSITION:
        return decomposition_prompt(str(pair.source)), decomposition_target(pair.target)
    return recomposition_prompt(pair.source), recomposition_target(str(pair.target))


def _encoder_config() -> dict[str, Any]:
    return {
        "epochs": settings.VALENCE_ENCODER_EPOCHS,
        "batch_size": settings.VALENCE_ENCODER_BATCH_SIZE,
        "learning_rate": settings.VALENCE_ENCODER_LEARNING_RATE,
    }


def _default_config() -> dict[str, Any]:
    return {
        "epochs": settings.VALENCE_TRAIN_EPOCHS,
        "max_steps": settings.VALENCE_TRAIN_MAX_STEPS,
        "batch_size": settings.VALENCE_TRAIN_BATCH_SIZE,
        "learning_rate": settings.VALENCE_TRAIN_LEARNING_RATE,
        "lora_rank": settings.VALENCE_LORA_RANK,
        "lora_alpha": 2 * settings.VALENCE_LORA_RANK,
        "lora_layers": settings.VALENCE_LORA_LAYERS,
    }


class _ProgressWriter:
    """Writes progress at most every 2 s: live enough for a console, cheap for the database."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.last = 0.0
        self.last_logged = time.monotonic()

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if now - self.last < 2 and progress.step != progress.total_steps:
            return
        self.last = now
        if now - self.last_logged >= 30:
            self.last_logged = now
            logger.info(
                "v%s step %s/%s loss %.3f, about %.0f s left",
                self.run.version_id,
                progress.step,
                progress.total_steps,
                progress.loss,
                progress.eta_s,
            )
        _update(
            self.run,
            step=progress.step,
            total_steps=progress.total_steps,
            loss=progress.loss,
            eta_seconds=progress.eta_s,
        )


class _CancelCheck:
    """Reads the cancel flag every few seconds, not every step."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.last = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < 3:
            return False
        self.last = now
        return TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()


def _log(run: TrainingRun, line: str) -> None:
    """Into the run's log (the console shows it) and the process log (bin/serve shows it)."""
    logger.info("v%s %s", run.version_id, line)
    run.append_log(line)


def _update(run: TrainingRun, **fields: Any) -> None:
    fields["heartbeat_at"] = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)


def _set_status(version: ModelVersion, status: str) -> None:
    version.status = status
    version.save(update_fields=["status", "updated_at"])


def _fail(run: TrainingRun, error: str, *, status: str = TrainingRun.Status.FAILED) -> None:
    _update(run, status=status, error=error, finished_at=timezone.now())
    ModelVersion.objects.filter(pk=run.version_id).update(
        status=VersionStatus.FAILED, is_active=False
    )
