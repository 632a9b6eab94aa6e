from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import Direction, ModelKind
from training.models import TrainingRun
from training.pipeline import describe_calibration, queue_training, run_training


class Command(BaseCommand):
    help = (
        "Train a student for a direction from the stored calls: a generative LoRA, or with "
        "--kind encoder the decomposition encoder. Queues a django-q2 task (run "
        "`valence qcluster`) unless --sync runs it here and now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--direction", choices=Direction.values, required=True)
        parser.add_argument(
            "--kind", choices=ModelKind.values, default=ModelKind.GENERATIVE, help="What to train."
        )
        parser.add_argument("--sync", action="store_true", help="Train in this process.")
        parser.add_argument(
            "--promote",
            action="store_true",
            help="Promote automatically if the gate passes (default: staff decide).",
        )
        parser.add_argument("--epochs", type=float)
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--max-seconds", type=float, help="Training time budget.")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--max-train-pairs", type=int, help="Train on a seeded sample.")

    def handle(
        self, *args: Any, direction: str, kind: str, sync: bool, promote: bool, **options: Any
    ) -> None:
        train = {
            key: options[key]
            for key in ("epochs", "max_steps", "max_seconds", "batch_size", "learning_rate")
            if options.get(key) is not None
        }
        config = {
            "train": train,
            "max_train_pairs": options.get("max_train_pairs"),
            "promote": promote,
        }
        try:
            version = queue_training(
                direction,
                kind=kind,
                trigger=TrainingRun.Trigger.MANUAL,
                config=config,
                enqueue=not sync,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if version is None:
            raise CommandError(f"a {direction} {kind} training is already queued or running")
        if not sync:
            self.stdout.write(f"queued v{version.pk}; a worker (`valence qcluster`) will train it")
            return
        self.stdout.write(f"training v{version.pk} ({direction} {kind}) here; Ctrl-C to stop")
        try:
            version = run_training(version.pk)
        except KeyboardInterrupt:  # run_training recorded it: the direction is free again
            version.refresh_from_db()
            error = version.training_run.error or "interrupted"
            raise CommandError(f"v{version.pk} {error}", returncode=130) from None
        run = version.training_run
        self.stdout.write(run.log)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"v{version.pk} {run.status}: {run.error.splitlines()[0]}")
        self.stdout.write(
            f"v{version.pk} {version.status}{' (active)' if version.is_active else ''}: "
            + describe_calibration(version.metrics)
        )
