from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.models import TrainingRun


class Command(BaseCommand):
    help = "Ask the worker training version N to stop (it checks every few seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)

    def handle(self, *args: Any, version: int, **options: Any) -> None:
        updated = TrainingRun.objects.filter(
            version_id=version, status__in=[TrainingRun.Status.PENDING, TrainingRun.Status.RUNNING]
        ).update(cancel_requested=True)
        if not updated:
            raise CommandError(f"v{version} has no pending or running training")
        self.stdout.write(f"asked v{version}'s training to stop")
