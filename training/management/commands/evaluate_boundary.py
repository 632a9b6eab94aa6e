from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from boundary.models import Direction
from boundary.triples import TripleValidationError, parse_triples
from training.datasets import ImportFileError, read_jsonl
from training.evaluation import Example
from training.pipeline import evaluate_version
from training.version_command import VersionCommand


class Command(VersionCommand):
    help = (
        "Run a registered version over a reference JSONL file (WebNLG format), score it, and "
        "record the metrics and latency p50/p95 as an Evaluation of that version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--data", type=Path, required=True)
        parser.add_argument("--limit", type=int, help="Score only the first N entries.")
        parser.add_argument(
            "--sample",
            type=int,
            help="Score a random sample of N entries (seeded by --seed: comparable across models).",
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(
        self,
        *args: Any,
        version: int,
        data: Path,
        limit: int | None,
        sample: int | None,
        seed: int,
        **options: Any,
    ) -> None:
        model = self.model_version(version)
        if not data.is_file():
            raise CommandError(f"{data}: no such file")
        try:
            examples = load_reference_examples(data, model.direction, limit)
        except (ImportFileError, TripleValidationError) as exc:
            raise CommandError(str(exc)) from None
        if sample is not None and sample < len(examples):
            examples = random.Random(seed).sample(examples, sample)
        metrics = evaluate_version(model, examples, source=str(data), calibrate=False)
        evaluation = model.evaluations.first()
        if evaluation is None:  # evaluate_version has just recorded one
            raise CommandError(f"v{model.pk}: the evaluation was not recorded")
        report = {
            "version": model.pk,
            "direction": model.direction,
            "data": str(data),
            "latency_p50_ms": evaluation.latency_p50_ms,
            "latency_p95_ms": evaluation.latency_p95_ms,
            **metrics,
        }
        self.stdout.write(json.dumps(report, indent=2))


def load_reference_examples(path: Path, direction: str, limit: int | None) -> list[Example]:
    """Decomposition: one example per text. Recomposition: one per entry (all its texts)."""
    examples: dict[str, Example] = {}
    for number, record in read_jsonl(path):
        if "text" not in record or "triples" not in record:
            raise ImportFileError(path, number, 'needs "text" and "triples"')
        triples = tuple(parse_triples(record["triples"]))
        if direction == Direction.DECOMPOSITION:
            key = record.get("id") or f"line{number}"
            examples[key] = Example(source=record["text"], references=(triples,))
        else:
            key = record.get("entry_id") or record.get("id") or f"line{number}"
            known = examples.get(key)
            texts = (known.references if known else ()) + (record["text"],)
            examples[key] = Example(source=triples, references=texts)
        if limit is not None and len(examples) > limit:
            examples.pop(key)
            break
    return list(examples.values())
