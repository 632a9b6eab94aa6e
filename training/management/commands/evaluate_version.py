from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import ModelVersion, VersionStatus
from training.committee import describe_committee
from training.pipeline import (
    describe_calibration,
    eval_split_pairs,
    evaluate_version,
    examples_from_pairs,
)


class Command(BaseCommand):
    help = (
        "Score a version on this install's eval split, calibrate its threshold and compare it "
        "with the active version on the same examples: what a training does before the gate. "
        "An imported version is queued for it on import."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)

    def handle(self, *args: Any, version: int, **options: Any) -> None:
        model = ModelVersion.objects.filter(pk=version).first()
        if model is None:
            raise CommandError(f"no model version {version}")
        metrics = evaluate_on_eval_split(model)
        self.stdout.write(f"v{model.pk}: {describe_calibration(metrics)}")
        if metrics.get("committee"):
            self.stdout.write(f"v{model.pk}: {describe_committee(metrics['committee'])}")


def evaluate_on_eval_split(version: ModelVersion) -> dict[str, Any]:
    """Replace a candidate's figures by ones measured here, which the gate then judges.

    An imported version keeps where it came from (`metrics["imported"]`). The active version
    is refused: recalibrating it would move the threshold it serves with.
    """
    if version.is_active:
        raise CommandError(f"v{version.pk} serves; only a candidate is re-evaluated")
    if version.status not in (VersionStatus.READY, VersionStatus.RETIRED):
        raise CommandError(f"v{version.pk} is {version.status}; only a finished version evaluates")
    evaluation = eval_split_pairs(version.direction, version.kind)
    examples = examples_from_pairs(evaluation)
    if not examples:
        raise CommandError(
            f"no eligible {version.direction} pairs in the eval split here: v{version.pk} stays "
            "unevaluated, and the gate refuses it"
        )
    imported = (version.metrics or {}).get("imported")
    metrics = evaluate_version(version, examples, source="eval split")
    if imported is not None:
        metrics = {**metrics, "imported": imported}
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics, eval_count=len(evaluation))
    return metrics
