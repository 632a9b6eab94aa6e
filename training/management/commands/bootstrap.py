from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from boundary.models import BoundaryCall, Direction, ModelKind, ModelVersion, ServedBy
from boundary.registry import do_promote, gate_verdict
from training.base_models import fetch_base_model, known_base_models
from training.datasets import import_pairs
from training.models import TrainingRun
from training.pipeline import describe_calibration, queue_training, run_training

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "valence_examples.jsonl"


def fixed_steps(count: int) -> dict[str, Any]:
    """A training config of exactly `count` optimiser steps, however long they take."""
    return {"epochs": 0, "min_steps": count, "max_steps": count, "max_seconds": 0}


class Command(BaseCommand):
    help = (
        "Offline start: with no LLM key and no active local model, import the shipped example "
        "corpus, train a student per direction for a fixed, seeded number of steps, and "
        "promote it if it passes the gate. With a key, do nothing: the service starts cold and "
        "learns from use."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Train even with an API key.")
        parser.add_argument(
            "--decomposer",
            choices=[ModelKind.ENCODER, ModelKind.GENERATIVE],
            default=settings.VALENCE_BOOTSTRAP_DECOMPOSER,
            help="Which student learns decomposition (default: VALENCE_BOOTSTRAP_DECOMPOSER).",
        )
        parser.add_argument(
            "--steps",
            type=int,
            default=settings.VALENCE_BOOTSTRAP_STEPS,
            help="Optimiser steps of a generative student (default: VALENCE_BOOTSTRAP_STEPS).",
        )
        parser.add_argument(
            "--encoder-steps",
            type=int,
            default=settings.VALENCE_BOOTSTRAP_ENCODER_STEPS,
            help="Optimiser steps of the encoder (default: VALENCE_BOOTSTRAP_ENCODER_STEPS).",
        )
        parser.add_argument(
            "--eval-pairs",
            type=int,
            default=120,
            help="Eval-split pairs used to calibrate a generative student (an encoder uses all).",
        )

    def handle(
        self,
        *args: Any,
        force: bool,
        decomposer: str,
        steps: int,
        encoder_steps: int,
        eval_pairs: int,
        **options: Any,
    ) -> None:
        if settings.ANTHROPIC_API_KEY and not force:
            self.stdout.write("An Anthropic key is set: starting cold; students train from use.")
            return
        kinds: dict[str, str] = {
            Direction.DECOMPOSITION: decomposer,
            Direction.RECOMPOSITION: ModelKind.GENERATIVE,
        }
        todo = [
            direction
            for direction in Direction.values
            if not ModelVersion.objects.active().filter(direction=direction).exists()
        ]
        if not todo:
            self.stdout.write("Local models are active for both directions.")
            return
        if not BoundaryCall.objects.filter(served_by=ServedBy.IMPORTED).exists():
            counts = import_pairs(CORPUS, eval_fraction=settings.VALENCE_BOOTSTRAP_EVAL_FRACTION)
            summary = ", ".join(f"{count} {name}" for name, count in counts.items())
            self.stdout.write(f"Imported the example corpus: {summary} pairs")
        for direction in todo:
            kind = kinds[direction]
            count = encoder_steps if kind == ModelKind.ENCODER else steps
            base = (
                settings.VALENCE_ENCODER_BASE_MODEL
                if kind == ModelKind.ENCODER
                else settings.VALENCE_BASE_MODELS[direction]
            )
            if base in known_base_models():  # else a local folder: nothing to fetch
                fetch_base_model(base, settings.VALENCE_MODEL_DIR)
            self.stdout.write(f"Training the {direction} {kind} student ({count} steps)...")
            version = queue_training(
                direction,
                kind=kind,
                trigger=TrainingRun.Trigger.BOOTSTRAP,
                # Steps, not seconds: the same model on a quiet or a busy machine.
                # An encoder is judged on every eval pair (milliseconds each: calibration
                # needs the evidence); a generative student on `eval_pairs` (seconds each).
                config={"train": fixed_steps(count)}
                | ({} if kind == ModelKind.ENCODER else {"max_eval_pairs": eval_pairs}),
                enqueue=False,
            )
            if version is None:
                self.stdout.write(f"  a {direction} training is already running; skipped")
                continue
            version = run_training(version.pk)
            version = self._degraded_only_if_refused_for_calibration(version)
            self.stdout.write(self._summary(version))

    def _degraded_only_if_refused_for_calibration(self, version: ModelVersion) -> ModelVersion:
        """Offline there is no LLM to fall back to: a version refused *only* because it may not
        answer alone still beats a 503. It is forced in, logged, and the cascade lets it answer
        only as "degraded" (an uncalibrated version never answers alone)."""
        if version.is_active or version.training_run.status != TrainingRun.Status.SUCCEEDED:
            return version
        if settings.ANTHROPIC_API_KEY or not gate_verdict(version).refused_only_for_calibration:
            return version
        if version.threshold is not None:
            # A threshold without held-out evidence (the gate's reason): it must not answer
            # alone by it. The calibration metrics keep what was chosen, for the record.
            version.threshold = None
            version.save(update_fields=["threshold", "updated_at"])
        do_promote(
            version,
            force=True,
            reason="offline start without an LLM: may serve degraded answers only, never alone",
        )
        version.refresh_from_db()
        return version

    def _summary(self, version: ModelVersion) -> str:
        run = version.training_run
        if run.status != TrainingRun.Status.SUCCEEDED:
            return f"  v{version.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}"
        if version.is_active and not version.is_calibrated:
            state = "active for degraded answers only"
        elif version.is_active:
            state = "active"
        else:
            state = "not promoted (see the run log)"
        return f"  v{version.pk} {state}: {describe_calibration(version.metrics)}"
