from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.models import Direction
from training.datasets import ImportFileError, import_pairs


class Command(BaseCommand):
    help = (
        "Store each {text, triples} record of a JSONL file (the WebNLG format) as imported "
        "training pairs, in both directions unless --direction is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--direction", choices=Direction.values)
        parser.add_argument("--limit", type=int, help="Import a seeded random sample this big.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(
        self,
        *args: Any,
        file: Path,
        direction: str | None,
        limit: int | None,
        seed: int,
        **options: Any,
    ) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        directions = [direction] if direction else Direction.values
        try:
            counts = import_pairs(file, directions=directions, limit=limit, seed=seed)
        except ImportFileError as exc:
            raise CommandError(f"{exc} (nothing was imported)") from None
        for name, count in counts.items():
            self.stdout.write(f"imported {count} {name} pairs")
