"""Data → training → export → evaluation → calibration → registry → (gated) promotion.

`training.trigger.queue_training` creates a queued ModelVersion and hands its id to a django-q2
worker; `run_training` is what the worker (or `train_boundary --sync`) executes. Its state changes
go through `training.runs` as they happen, so the console shows live progress and any way out
of a run (an error, a cancel, Ctrl-C, a dead worker) leaves a failed version and its reason.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q

from boundary.artifacts import publish_configured
from boundary.models import Direction, ModelKind, ModelVersion
from boundary.prompts import (
    decomposition_prompt,
    decomposition_target,
    recomposition_prompt,
    recomposition_target,
)
from boundary.registry import PromotionRefused, do_promote
from boundary.students import BackendUnavailable, StudentBackend, load_student
from boundary.triples import Triple
from training.committee import committee_promise, describe_committee
from training.datasets import TrainingPair, eligible_pairs, held_out_keys, split_pairs
from training.evaluation import Decomposer, Example, Report, at_threshold, evaluate
from training.models import Evaluation, TrainingRun
from training.runs import (
    STALE_AFTER,
    do_begin_evaluation,
    do_cancel_run,
    do_fail_run,
    do_start_run,
    do_succeed_run,
    log_line,
    reap_dead_runs,
    report_progress,
)
from training.trigger import (
    latest_watermark,
    maybe_queue_training,
    new_eligible_pairs,
    queue_due_trainings,
    queue_training,
    serving_backend,
    trainable_kinds,
)

if TYPE_CHECKING:  # the trainers import torch: only when training
    from training.trainers.common import Progress

# Re-exported: commands and tests import the whole lifecycle from here.
__all__ = [
    "STALE_AFTER",
    "describe_calibration",
    "evaluate_version",
    "examples_from_pairs",
    "latest_watermark",
    "maybe_queue_training",
    "new_eligible_pairs",
    "queue_due_trainings",
    "queue_training",
    "reap_dead_runs",
    "round_trip_decomposer",
    "run_training",
    "serving_backend",
    "trainable_kinds",
]

logger = logging.getLogger(__name__)


def run_training(version_id: int) -> ModelVersion:
    """Train, export, evaluate, calibrate and (if allowed and the gate agrees) promote.

    Every way out of the training is recorded before it leaves: an error fails the run, a
    cancel or Ctrl-C (KeyboardInterrupt) cancels it, any other BaseException (SystemExit from a
    stopping worker) fails it; those last two are re-raised once written down.
    """
    version = ModelVersion.objects.get(pk=version_id)
    run = version.training_run
    if run.status == TrainingRun.Status.PENDING and run.cancel_requested:
        do_cancel_run(run, "cancelled before it started")
        version.refresh_from_db()
        return version
    do_start_run(run)  # refused (RunStateError) unless pending: the reaper may have failed it
    try:
        _train_evaluate_register(version, run)
    except Exception as exc:
        from training.trainers.common import Cancelled

        if isinstance(exc, Cancelled):
            do_cancel_run(run, str(exc))
        else:
            logger.exception("training v%s failed", version_id)
            do_fail_run(run, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
        version.refresh_from_db()
        return version
    except BaseException as exc:
        _record_interruption(run, exc)
        raise
    version.refresh_from_db()
    # Automatic and bootstrap runs promote themselves (when allowed); manual ones on request.
    promote = run.config.get("promote", run.trigger != TrainingRun.Trigger.MANUAL)
    if settings.VALENCE_AUTO_PROMOTE and promote:
        try:
            do_promote(version, reason=f"automatic after a {run.trigger} training")
            log_line(run, "promoted: the gate passed")
        except PromotionRefused as refused:
            log_line(run, f"not promoted: {refused}")
        version.refresh_from_db()
    return version


def _record_interruption(run: TrainingRun, exc: BaseException) -> None:
    """Ctrl-C is someone stopping the run on purpose (cancelled, like cancel-training); any
    other BaseException ends it against its will (failed). Best effort: if the database cannot
    take the write either, the reaper fails the run once its heartbeat is stale."""
    name = type(exc).__name__
    try:
        if isinstance(exc, KeyboardInterrupt):
            do_cancel_run(run, f"interrupted ({name}, Ctrl-C): nothing was registered")
        else:
            detail = f": {exc}" if str(exc) else ""
            do_fail_run(run, f"the process stopped ({name}{detail}) before the run finished")
    except Exception:
        logger.exception("could not record that v%s was interrupted by %s", run.version_id, name)


def eval_cap(kind: str) -> int:
    """How many eval-split pairs judge a candidate of this kind (evaluation time is the cost)."""
    if kind == ModelKind.ENCODER:
        return int(settings.VALENCE_ENCODER_EVAL_MAX_PAIRS)
    return int(settings.VALENCE_EVAL_MAX_PAIRS)


def eval_split_pairs(direction: str, kind: str) -> list[TrainingPair]:
    """This install's eval-split pairs of a direction, as many as judge a version of `kind`."""
    split = split_pairs(
        eligible_pairs(direction), held_out=held_out_keys(), max_eval=eval_cap(kind)
    )
    return split.evaluation


def _train_evaluate_register(version: ModelVersion, run: TrainingRun) -> None:
    from training.base_models import resolve_base_model

    direction = version.direction
    split = split_pairs(
        eligible_pairs(direction),
        held_out=held_out_keys(),
        max_train=run.config.get("max_train_pairs"),
        max_eval=run.config.get("max_eval_pairs") or eval_cap(version.kind),
    )
    train, held_out = split.train, split.evaluation
    if not train:
        raise ValueError(f"no eligible {direction} training pairs")
    watermark = max(p.call_id for p in train + held_out)
    ModelVersion.objects.filter(pk=version.pk).update(
        train_count=len(train), eval_count=len(held_out), data_watermark=watermark
    )
    log_line(
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
    _publish(run, version.pk, artifact)
    version.refresh_from_db()

    do_begin_evaluation(run)
    metrics = evaluate_version(version, examples_from_pairs(held_out), source="eval split")
    log_line(run, describe_calibration(metrics))
    if metrics.get("committee"):
        log_line(run, describe_committee(metrics["committee"]))
    do_succeed_run(run)


def _publish(run: TrainingRun, version_id: int, artifact: Path) -> None:
    """Hand the finished artefact to the artefact store, if there is one, before it is judged:
    a version that becomes ready must be loadable on every host (a failure fails the run)."""
    started = time.perf_counter()
    manifest = publish_configured(version_id, artifact)
    if manifest is not None:
        size = sum(entry["size"] for entry in manifest["files"].values())
        log_line(
            run,
            f"published {len(manifest['files'])} files ({size / 1024**2:.1f} MB) to "
            f"{settings.VALENCE_ARTIFACT_STORE} in {time.perf_counter() - started:.1f} s",
        )


def _train_generative(
    version: ModelVersion, run: TrainingRun, base: str, train: list[TrainingPair], artifact: Path
) -> None:
    from training.trainers.generative import TrainConfig, train_lora

    config = TrainConfig(**{**_default_config(), **run.config.get("train", {})})
    trainer = train_lora
    if version.backend == "mlx":  # trained by the runtime that serves it
        from training.trainers.mlx import train_lora_mlx

        trainer = train_lora_mlx
    examples = [_example_text(version.direction, pair) for pair in train]
    result = _run_trainer(run, trainer, base, examples, artifact, config)
    log_line(run, f"{_trained(result)}; {result.skipped_too_long} too long")
    if version.backend == "onnx":
        from training.exporters import export_ort_genai

        started = time.perf_counter()
        precision = settings.VALENCE_ORT_PRECISION
        export_ort_genai(result.merged_dir, artifact / "ort-genai", precision=precision)
        elapsed = time.perf_counter() - started
        log_line(run, f"exported to onnxruntime-genai {precision} in {elapsed:.0f} s")


def _train_encoder(run: TrainingRun, base: str, train: list[TrainingPair], artifact: Path) -> None:
    from training.trainers.encoder import EncoderConfig, train_encoder

    config = EncoderConfig(**{**_encoder_config(), **run.config.get("train", {})})
    examples = [(str(pair.source), list(_triples(pair.target))) for pair in train]
    result = _run_trainer(run, train_encoder, base, examples, artifact, config)
    log_line(
        run,
        f"{_trained(result)}; {result.predicates} predicates; "
        f"{result.aligned_share:.1%} of triples aligned to their text; exported to ONNX"
        + (" (int8)" if config.quantize else ""),
    )


def _run_trainer(
    run: TrainingRun,
    trainer: Callable[..., Any],
    base: str,
    examples: list[Any],
    artifact: Path,
    config: Any,
) -> Any:
    """Record the config the run trains with, then train with progress and cancellation."""
    run.config = {**run.config, "train": config.as_dict(), "train_pairs": len(examples)}
    report_progress(run, config=run.config)
    return trainer(
        base,
        examples,
        artifact,
        config,
        on_progress=_ProgressWriter(run),
        should_stop=_CancelCheck(run),
    )


def _trained(result: Any) -> str:
    return (
        f"trained {result.steps} steps on {result.examples} examples in {result.seconds:.0f} s "
        f"({result.device}); final loss {result.final_loss:.3f}"
    )


def evaluate_version(
    version: ModelVersion, examples: list[Example], *, source: str, calibrate: bool = True
) -> dict[str, Any]:
    """Score `version` on `examples`; on the eval split, also calibrate and compare with the
    active version on the very same examples (the gate compares like with like)."""
    student = load_student(version.student_spec())
    round_trip = round_trip_decomposer(version.direction)
    report = _evaluate(student, version.direction, examples, round_trip)
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
        metrics["baseline"] = _baseline_metrics(baseline, examples, round_trip)
    committee = _committee(version, examples, report)
    if committee:
        metrics["committee"] = committee
    version.metrics = metrics
    version.threshold = report.calibration.threshold
    version.expected_fallback_rate = report.calibration.expected_fallback_rate
    version.save(update_fields=["metrics", "threshold", "expected_fallback_rate", "updated_at"])
    return metrics


def _committee(version: ModelVersion, examples: list[Example], report: Report) -> dict[str, Any]:
    """A generative decomposer's agreement with the active encoder on the same held-out
    examples (training.committee); the encoder is milliseconds a text, and the generative
    answers are the evaluation's own."""
    if version.direction != Direction.DECOMPOSITION or version.kind != ModelKind.GENERATIVE:
        return {}
    encoder = (
        ModelVersion.objects.active()
        .filter(direction=Direction.DECOMPOSITION, kind=ModelKind.ENCODER)
        .first()
    )
    if encoder is None or not examples:
        return {}
    try:
        partner = load_student(encoder.student_spec())
    except BackendUnavailable as exc:
        logger.warning("the active encoder v%s cannot be loaded: %s", encoder.pk, exc)
        return {}
    return committee_promise(
        report.predictions, examples, partner, encoder.pk, settings.VALENCE_CALIBRATION_TARGET
    )


def _evaluate(
    student: StudentBackend,
    direction: str,
    examples: list[Example],
    round_trip: tuple[Decomposer | None, str],
) -> Report:
    """`evaluate` with this install's calibration target and bound."""
    decomposer, decomposer_name = round_trip
    return evaluate(
        student,
        direction,
        examples,
        target=settings.VALENCE_CALIBRATION_TARGET,
        z=settings.VALENCE_CALIBRATION_Z,
        decomposer=decomposer,
        decomposer_name=decomposer_name,
    )


def _baseline_metrics(
    baseline: ModelVersion, examples: list[Example], round_trip: tuple[Decomposer | None, str]
) -> dict[str, Any]:
    """The active version's headline on the candidate's examples. An active version that cannot
    be loaded (its artefact lost or broken) has none: the cascade already sends its traffic to
    the LLM, so a candidate is judged on its own merits instead of failing with it."""
    try:
        student = load_student(baseline.student_spec())
    except BackendUnavailable as exc:
        logger.warning("the active v%s cannot be loaded to compare with: %s", baseline.pk, exc)
        return {"version": baseline.pk, "headline": None, "error": str(exc)}
    report = _evaluate(student, baseline.direction, examples, round_trip)
    return {
        "version": baseline.pk,
        "headline": report.metrics["headline"],
        "data_fingerprint": report.metrics["data_fingerprint"],
    }


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

    def decompose(text: str) -> Sequence[Triple]:
        output = backend.decompose(text).output
        if isinstance(output, str):  # a decomposition student answers triples
            raise TypeError(f"v{decomposer.pk} answered a decomposition with text")
        return output

    return decompose, f"v{decomposer.pk} ({decomposer.kind})"


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
    if calibration.get("per_triple") is False:
        line += ", whole answers only"
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
        return decomposition_prompt(str(pair.source)), decomposition_target(_triples(pair.target))
    return recomposition_prompt(_triples(pair.source)), recomposition_target(str(pair.target))


def _triples(value: str | tuple[Triple, ...]) -> tuple[Triple, ...]:
    """The triples side of a pair (its source or target, by direction)."""
    if isinstance(value, str):
        raise TypeError("expected triples, got a text")
    return value


def _encoder_config() -> dict[str, Any]:
    return {
        "epochs": settings.VALENCE_ENCODER_EPOCHS,
        "min_steps": settings.VALENCE_ENCODER_MIN_STEPS,
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

    def __call__(self, progress: Progress) -> None:
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
        report_progress(
            self.run,
            step=progress.step,
            total_steps=progress.total_steps,
            loss=progress.loss,
            eta_seconds=progress.eta_s,
        )


class _CancelCheck:
    """Reads the cancel flag every few seconds, not every step. A run that is no longer
    running (the reaper failed it while this worker was silent) stops as well."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.last = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < 3:
            return False
        self.last = now
        return (
            TrainingRun.objects.filter(pk=self.run.pk)
            .filter(Q(cancel_requested=True) | ~Q(status=TrainingRun.Status.RUNNING))
            .exists()
        )
