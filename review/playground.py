"""The playground: type a text or triples and see what the cascade answers, stage by stage.

It calls the API's own service functions (`cascade.decompose` / `cascade.recompose`) with the
API's own input validation, so each try is a stored call like any other, marked
`origin="playground"`. People who may see the model versions also get what each active version
says on its own (`cascade.*_with_each_version`), which stores nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from boundary import cascade
from boundary.models import BoundaryCall, CallOrigin, Direction
from boundary.serializers import DecomposeRequestSerializer, RecomposeRequestSerializer
from boundary.triples import Triple
from review.roles import REVIEW, VIEW_VERSIONS
from review.views import HtmxHttpRequest

TEMPLATE = "review/playground.html"

EXAMPLE_TEXT = "Chris prefers composable architectures."
EXAMPLE_TRIPLES = json.dumps(
    [{"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}],
    indent=2,
)


@dataclass
class PlaygroundForm:
    """What was typed (kept to refill the form) and, once valid, what the cascade is asked."""

    direction: str = Direction.DECOMPOSITION
    text: str = ""
    triples_json: str = ""
    clean_text: str = ""  # what the cascade is asked (trimmed, as the API trims it)
    triples: list[Triple] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return not self.errors


def read_playground_form(data: QueryDict) -> PlaygroundForm:
    """Validate as the API does (its serializers), with messages written for a person."""
    form = PlaygroundForm(
        direction=data.get("direction", ""),
        text=data.get("text", ""),
        triples_json=data.get("triples", ""),
    )
    if form.direction == Direction.DECOMPOSITION:
        _read_text(form)
    elif form.direction == Direction.RECOMPOSITION:
        _read_triples(form)
    else:
        form.direction = Direction.DECOMPOSITION
        form.errors["direction"] = ["Choose text → triples or triples → text."]
    return form


def _read_text(form: PlaygroundForm) -> None:
    if not form.text.strip():
        form.errors["text"] = [f"Write a text to decompose, e.g. “{EXAMPLE_TEXT}”"]
        return
    checked = DecomposeRequestSerializer(data={"text": form.text})
    if checked.is_valid():
        form.clean_text = checked.validated_data["text"]
    else:
        form.errors = _flatten(checked.errors)


def _read_triples(form: PlaygroundForm) -> None:
    if not form.triples_json.strip():
        form.errors["triples"] = ["Write one or more triples as a JSON list (see the example)."]
        return
    try:
        parsed = json.loads(form.triples_json)
    except json.JSONDecodeError as exc:
        form.errors["triples"] = [
            f"This is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ]
        return
    except (ValueError, RecursionError):  # an integer too long to convert, or nesting too deep
        form.errors["triples"] = ["This is not JSON the parser can read."]
        return
    checked = RecomposeRequestSerializer(data={"triples": parsed})
    if checked.is_valid():
        form.triples = checked.validated_data["triples"]
    else:
        form.errors = _flatten(checked.errors)


@require_http_methods(["GET", "POST"])
@login_required
def playground(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, PlaygroundForm())
    form = read_playground_form(request.POST)
    if not form.is_valid:
        return _render(request, form, status=422)
    try:
        if form.direction == Direction.DECOMPOSITION:
            call = cascade.decompose(
                form.clean_text, client=request.user, origin=CallOrigin.PLAYGROUND
            )
        else:
            call = cascade.recompose(
                form.triples, client=request.user, origin=CallOrigin.PLAYGROUND
            )
    except cascade.Unserved as unserved:
        # The API answers 503; here the page worked and shows the stored, unanswered call.
        call = unserved.call
    compared = None
    if request.user.has_perm(VIEW_VERSIONS):
        compared = (
            cascade.decompose_with_each_version(form.clean_text)
            if form.direction == Direction.DECOMPOSITION
            else cascade.recompose_with_each_version(form.triples)
        )
    return _render(request, form, call=call, compared=compared)


def _render(
    request: HtmxHttpRequest,
    form: PlaygroundForm,
    *,
    call: BoundaryCall | None = None,
    compared: list[cascade.VersionSays] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "call": call,
        "compared": compared,
        "compared_rows": [_compared_row(said) for said in compared or []],
        "example_text": EXAMPLE_TEXT,
        "example_triples": EXAMPLE_TRIPLES,
        "max_text_chars": settings.VALENCE_MAX_TEXT_CHARS,
        "max_triples": settings.VALENCE_MAX_TRIPLES,
        "can_review": request.user.has_perm(REVIEW),
        **(_call_context(call) if call is not None else {}),
    }
    template = f"{TEMPLATE}#result" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)


def _call_context(call: BoundaryCall) -> dict[str, Any]:
    diagnostics = call.diagnostics or {}
    sources = call.triple_sources or []
    rows = []
    if call.direction == Direction.DECOMPOSITION:
        rows = [
            {**triple, "source": sources[i] if i < len(sources) else None}
            for i, triple in enumerate(call.output or [])
        ]
    return {
        "triple_rows": rows,
        "timings": diagnostics.get("timings", []),
        "student_errors": diagnostics.get("student_errors", []),
        # The round trip: the answer, sent back the other way with one click.
        "round_trip": (
            json.dumps(call.output, indent=2, ensure_ascii=False)
            if isinstance(call.output, list) and call.output
            else call.output or ""
        ),
    }


def _compared_row(said: cascade.VersionSays) -> dict[str, Any]:
    """A version's own answer, with each triple's confidence where the version gives one."""
    output = said.answer.output if said.answer is not None else []
    triples: list[tuple[Triple, float | None]] = []
    if isinstance(output, list):
        confidences = said.answer.triple_confidences if said.answer is not None else None
        triples = list(zip(output, confidences or [None] * len(output), strict=True))
    return {"said": said, "triples": triples}


def _flatten(detail: dict[str, Any]) -> dict[str, list[str]]:
    """{"triples": {"triples[0].subject": [...]}} -> {"triples[0].subject": [...]}."""
    flat: dict[str, list[str]] = {}
    for key, value in detail.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = [str(message) for message in value]
    return flat
