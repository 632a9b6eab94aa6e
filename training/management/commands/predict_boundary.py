from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from boundary.directions import DECOMPOSITION
from boundary.students import BackendUnavailable, StudentBackend, load_student
from boundary.triples import Triple, TripleValidationError, parse_triples
from training.datasets import ImportFileError, read_jsonl
from training.version_command import VersionCommand


class Command(VersionCommand):
    help = (
        "Write a registered version's answers to a WebNLG-style JSONL file as predictions that "
        "score-boundary reads: decomposition {id, triples, confidence} per record; "
        "recomposition {entry_id, text, confidence} per entry (its first triple set)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--data", type=Path, required=True, help="References (JSONL).")
        parser.add_argument("--out", type=Path, required=True, help="Predictions (JSONL).")
        parser.add_argument("--limit", type=int, help="Only the first N records.")

    def handle(
        self, *args: Any, version: int, data: Path, out: Path, limit: int | None, **options: Any
    ) -> None:
        model = self.model_version(version)
        if not data.is_file():
            raise CommandError(f"{data}: no such file")
        try:
            student = load_student(model.student_spec())
        except BackendUnavailable as exc:
            raise CommandError(f"v{model.pk} cannot be loaded: {exc}") from None
        written = failed = 0
        seen_entries: set[str] = set()
        with out.open("w", encoding="utf-8") as handle:
            try:
                for number, record in read_jsonl(data):
                    if limit is not None and written + failed >= limit:
                        break
                    line = self._predict(student, model.direction, number, record, seen_entries)
                    if line is None:
                        continue
                    failed += "error" in line
                    written += "error" not in line
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            except (ImportFileError, TripleValidationError) as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"v{model.pk}: {written} predictions, {failed} failed -> {out}")

    def _predict(
        self,
        student: StudentBackend,
        direction: str,
        number: int,
        record: dict[str, Any],
        seen_entries: set[str],
    ) -> dict[str, Any] | None:
        question: str | list[Triple]
        if direction == DECOMPOSITION:
            key: dict[str, Any] = {"id": record.get("id") or f"line{number}"}
            question = record["text"]
        else:
            entry = str(record.get("entry_id") or record.get("id") or f"line{number}")
            if entry in seen_entries:
                return None  # one recomposition per entry, like the evaluation
            seen_entries.add(entry)
            key = {"entry_id": entry}
            question = parse_triples(record["triples"])
        try:
            answer = (
                student.decompose(question)
                if isinstance(question, str)
                else student.recompose(question)
            )
        except Exception as exc:  # a student that fails on one input: recorded, not fatal
            empty: Any = [] if direction == DECOMPOSITION else ""
            field = "triples" if direction == DECOMPOSITION else "text"
            return {**key, field: empty, "confidence": 0.0, "error": str(exc)[:200]}
        if isinstance(answer.output, list):
            rows = [[t.subject, t.predicate, t.object] for t in answer.output]
            return {**key, "triples": rows, "confidence": answer.confidence}
        return {**key, "text": answer.output, "confidence": answer.confidence}
