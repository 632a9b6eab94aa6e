from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import ModelVersion
from boundary.registry import PromotionRefused, RegistryError, do_promote


class Command(BaseCommand):
    help = "Make a version serve, if the gate passes (or --force with a --reason)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--reason", default="")

    def handle(self, *args: Any, version: int, force: bool, reason: str, **options: Any) -> None:
        model = ModelVersion.objects.filter(pk=version).first()
        if model is None:
            raise CommandError(f"no model version {version}")
        try:
            event = do_promote(model, reason=reason or "manual promotion", force=force)
        except PromotionRefused as refused:
            raise CommandError(
                f"refused by the gate: {refused}\n{json.dumps(refused.verdict.as_dict())}"
            ) from None
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        previous = f" (replacing v{event.previous_version_id})" if event.previous_version_id else ""
        self.stdout.write(f"v{version} is active{previous}")
