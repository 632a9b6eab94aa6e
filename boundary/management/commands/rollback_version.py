from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import Direction, ModelKind
from boundary.registry import RegistryError, do_rollback


class Command(BaseCommand):
    help = "Return a direction to the version its active one replaced (or to the LLM alone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--direction", choices=Direction.values, required=True)
        parser.add_argument("--kind", choices=ModelKind.values, default=ModelKind.GENERATIVE)
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, direction: str, kind: str, reason: str, **options: Any) -> None:
        try:
            event = do_rollback(direction, kind, reason=reason)
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        restored = event.previous_version
        self.stdout.write(
            f"v{event.version_id} rolled back; "
            + (f"v{restored.pk} serves again" if restored else "no local model serves now")
        )
