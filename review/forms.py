"""Reading a reviewer's form: the verdict, the 0-1 score and a corrected output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.http import QueryDict

from boundary.models import BoundaryCall, Direction
from boundary.triples import FIELDS, Triple, TripleValidationError, parse_triples
from boundary.triples_settings import limits_from_settings

ACTIONS = ("accept", "reject", "correct", "score")


@dataclass
class ReviewForm:
    action: str = ""
    revision: int | None = None
    quality_score: float | None = None
    corrected: list[Triple] | str | None = None
    rows: list[dict[str, str]] = field(default_factory=list)  # the editor, as submitted
    text: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)  # "form" or "rows.N.field"

    @property
    def is_valid(self) -> bool:
        return not self.errors


def read_review_form(call: BoundaryCall, data: QueryDict) -> ReviewForm:
    form = ReviewForm(action=data.get("action", ""))
    if form.action not in ACTIONS:
        form.errors["form"] = [f"Unknown action {form.action!r}."]
        return form
    try:
        form.revision = int(data.get("revision", ""))
    except ValueError:
        form.errors["form"] = ["The form is missing its revision; reload the page."]
    score = data.get("quality_score", "").strip()
    if score:
        try:
            form.quality_score = float(score)
        except ValueError:
            form.quality_score = -1.0
        if not 0.0 <= form.quality_score <= 1.0:
            form.errors["quality_score"] = ["A quality score is a number from 0 to 1."]
    elif form.action == "score":
        form.errors["quality_score"] = ["Choose a score (keys 1-5)."]
    if form.action == "correct":
        _read_correction(call, data, form)
    return form


def _read_correction(call: BoundaryCall, data: QueryDict, form: ReviewForm) -> None:
    if call.direction == Direction.RECOMPOSITION:
        form.text = data.get("text", "").strip()
        if not form.text:
            form.errors["text"] = ["Write the corrected text."]
        elif len(form.text) > settings.VALENCE_MAX_TEXT_CHARS:
            form.errors["text"] = [f"At most {settings.VALENCE_MAX_TEXT_CHARS} characters."]
        elif "\x00" in form.text:  # as the API refuses it; PostgreSQL cannot store it
            form.errors["text"] = ["The text must not contain NUL characters."]
        else:
            form.corrected = form.text
        return
    columns = [data.getlist(name) for name in FIELDS]
    if len({len(column) for column in columns}) != 1:
        form.errors["form"] = ["The triple editor sent incomplete rows; reload the page."]
        return
    form.rows = [dict(zip(FIELDS, values, strict=True)) for values in zip(*columns, strict=True)]
    kept = [(i, row) for i, row in enumerate(form.rows) if any(v.strip() for v in row.values())]
    if not kept:
        form.errors["form"] = ["A correction needs at least one triple (or reject the call)."]
        return
    try:
        form.corrected = parse_triples(
            [row for _, row in kept], limits_from_settings(), path="rows"
        )
    except TripleValidationError as exc:
        for path, messages in exc.errors.items():
            # "rows[2].object" → the editor's own row number
            form.errors[_editor_path(path, [i for i, _ in kept])] = messages


def _editor_path(path: str, row_numbers: list[int]) -> str:
    match = re.match(r"rows\[(\d+)\](?:\.(\w+))?", path)
    if not match:
        return "form"
    row = row_numbers[int(match[1])]
    return f"rows.{row}.{match[2]}" if match[2] else f"rows.{row}"
