"""Remembered answers: an earlier answer to the very same input, served instead of asking a
generative student or the LLM again.

Apps repeat themselves: the same facts rendered again, a retried request, a sentence that comes
back. The LLM's answer to an input already seen (or a reviewer's correction of it) is the best
answer the service has for it, and the cheapest: one indexed query. The cascade asks memory
after the encoder (milliseconds, and a sure answer never waits for the query) and before a
generative student (hundreds of milliseconds) or the LLM.

Which earlier calls count, best first: a reviewer's correction; an answer a reviewer accepted;
an imported reference pair; the LLM's own answer, unreviewed and not scored below the training
floor, and only from the LLM model the direction asks now (a changed teacher is not answered
for by its predecessor). These are exactly the calls training learns from
(`BoundaryCallQuerySet.eligible_for_training`), so memory and training agree on what a good
answer is: never a rejected call, never a student's unreviewed guess, and never an answer that
was rejected where it was served again from memory. Where the LLM completed
an answer around a student's triples, its own full answer is the one remembered, as training
takes it. A remembered call is not itself a training pair (it adds no new label).

An input is the same when its fingerprint is (`boundary.fingerprint`: the text with its
whitespace collapsed, or the triple set in any order). VALENCE_MEMORY says whose calls count:
"all" (default: the students learn from every client's calls too), "client" (the asking
client's own, for deployments where one client must not be answered from another's reviewed
work, or learn from the answer's speed that the input was seen before), or "off".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from boundary.models import BoundaryCall, Direction, ReviewStatus
from boundary.triples import (
    STORED_LIMITS,
    TripleValidationError,
    parse_triples,
    same_triples,
    triples_to_json,
)

# Several earlier calls of one input are read at most (the newest first), to find the best
# kind of answer among them; repeated inputs rarely have more.
LOOKBACK = 20
SOURCES = ("corrected", "accepted", "imported", "teacher")  # best first


@dataclass(frozen=True)
class Remembered:
    call_id: int
    source: str  # one of SOURCES
    output: Any  # triples as JSON (decomposition) or the text (recomposition)


def recall(direction: str, input_hash: str, *, client: Any, llm_model: str) -> Remembered | None:
    """The best remembered answer to this input, or None."""
    scope = settings.VALENCE_MEMORY
    if scope == "off":
        return None
    calls = BoundaryCall.objects.eligible_for_training(
        direction, settings.VALENCE_TRAIN_QUALITY_FLOOR
    ).filter(input_hash=input_hash)
    if scope == "client":
        if getattr(client, "pk", None) is None:
            return None
        calls = calls.filter(client=client)
    rows = calls.order_by("-id").only(
        "id",
        "served_by",
        "review_status",
        "output",
        "corrected_output",
        "diagnostics",
        "llm_model",
    )[:LOOKBACK]
    candidates = [r for call in rows if (r := _remembered(direction, call, llm_model))]
    if not candidates:
        return None
    rejected = _rejected_outputs(direction, input_hash)
    candidates = [c for c in candidates if not any(_same(direction, c.output, r) for r in rejected)]
    return min(candidates, key=lambda c: SOURCES.index(c.source), default=None)


def _rejected_outputs(direction: str, input_hash: str) -> list[Any]:
    """Answers to this input that someone rejected, on whichever call carried them: a
    remembered answer rejected where it was served again is not served a third time."""
    return list(
        BoundaryCall.objects.filter(
            direction=direction, input_hash=input_hash, review_status=ReviewStatus.REJECTED
        )
        .exclude(output__isnull=True)
        .values_list("output", flat=True)[:LOOKBACK]
    )


def _same(direction: str, output: Any, other: Any) -> bool:
    if direction != Direction.DECOMPOSITION:
        return isinstance(other, str) and output == other.strip()
    try:
        return same_triples(
            parse_triples(output, STORED_LIMITS), parse_triples(other, STORED_LIMITS)
        )
    except TripleValidationError:
        return False


def _remembered(direction: str, call: BoundaryCall, llm_model: str) -> Remembered | None:
    source, output = call.label()
    if source == "teacher" and not _same_model(call.llm_model, llm_model):
        return None
    valid = _valid(direction, output)
    return None if valid is None else Remembered(call.pk, source, valid)


def _same_model(answered_by: str, asked: str) -> bool:
    """The API answers an alias ("claude-haiku-4-5") with the dated model it resolved to."""
    return bool(asked) and (answered_by == asked or answered_by.startswith(asked + "-"))


def _valid(direction: str, output: Any) -> Any:
    """The output as the API serves it, or None when it is not a valid answer any more (the
    limits may have changed since it was stored)."""
    if direction == Direction.DECOMPOSITION:
        try:
            return triples_to_json(parse_triples(output, STORED_LIMITS))
        except TripleValidationError:
            return None
    return output.strip() if isinstance(output, str) and output.strip() else None
