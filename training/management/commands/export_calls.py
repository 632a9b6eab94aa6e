from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from boundary.models import Direction
from training.datasets import export_pairs


class Command(BaseCommand):
    help = "Write every eligible training pair as JSONL (WebNLG-style: text, triples, split, tier)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--direction", choices=Direction.values)

    def handle(self, *args: Any, file: Path, direction: str | None, **options: Any) -> None:
        count = export_pairs(file, [direction] if direction else Direction.values)
        self.stdout.write(f"wrote {count} pairs to {file}")
