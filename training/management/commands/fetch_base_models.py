from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.base_models import BaseModelUnavailable, fetch_base_model, known_base_models


class Command(BaseCommand):
    help = (
        "Put the offline default base model(s) into the model store (VALENCE_MODEL_DIR/base). "
        "Training does this by itself on first need; run it ahead to pay the download early."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names",
            nargs="*",
            help=f"any of {', '.join(known_base_models())}; default: the configured ones",
        )

    def handle(self, *args: Any, names: list[str], **options: Any) -> None:
        # Not every known model: the larger encoders are for comparisons, fetched when named.
        configured = {*settings.VALENCE_BASE_MODELS.values(), settings.VALENCE_ENCODER_BASE_MODEL}
        for name in names or sorted(configured & set(known_base_models())):
            try:
                path = fetch_base_model(name, settings.VALENCE_MODEL_DIR)
            except (BaseModelUnavailable, ValueError) as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{name}: {path}")
