from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.ceiling import held_out_fold, span_ceiling
from training.datasets import ImportFileError, read_jsonl


class Command(BaseCommand):
    help = (
        "The ceiling of span-based decomposition on a WebNLG-style JSONL file: learn the "
        "normaliser on 4/5 of its entries, then align and normalise the reference spans of the "
        "other 1/5; prints the share of records whose triple set comes out exactly right."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--category", help="Only records of this category.")

    def handle(self, *args: object, file: Path, category: str | None, **options: object) -> None:
        try:
            records = [
                record
                for _, record in read_jsonl(file)
                if category is None or record.get("category") == category
            ]
        except (OSError, ImportFileError) as exc:
            raise CommandError(str(exc)) from None
        if not records:
            raise CommandError(f"no records{f' of category {category}' if category else ''}")
        scored = [record for record in records if held_out_fold(record)]
        learned = [record for record in records if not held_out_fold(record)]
        report = {
            "file": str(file),
            "category": category,
            "learned_on": len(learned),
            "matching": "valence (boundary.triples.same_triples)",
            **span_ceiling(learned, scored).as_dict(),
        }
        self.stdout.write(json.dumps(report, indent=2))
