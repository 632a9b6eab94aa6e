"""Training pairs from stored calls, and JSONL import/export in the WebNLG format.

A pair's tier says how much we trust it: a reviewer's correction beats an accepted answer or an
imported reference, which beats an unreviewed LLM answer. The split comes from the stored call
(a stable hash of the input), so the eval split is never trained on, run after run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from boundary.fingerprint import split_for, text_fingerprint, triples_fingerprint
from boundary.models import BoundaryCall, Direction, ReviewStatus, ServedBy
from boundary.triples import (
    Triple,
    TripleValidationError,
    normalise_text,
    parse_triples,
    triples_to_json,
)

TIER_CORRECTED, TIER_ACCEPTED, TIER_TEACHER = 0, 1, 2


@dataclass(frozen=True)
class TrainingPair:
    call_id: int
    source: str | tuple[Triple, ...]  # what the student reads
    target: str | tuple[Triple, ...]  # what it must write
    tier: int
    split: str
    input_hash: str


def eligible_pairs(direction: str) -> list[TrainingPair]:
    """Every eligible pair of a direction, deduplicated, best tier first, then newest."""
    calls = (
        BoundaryCall.objects.eligible_for_training(direction, settings.VALENCE_TRAIN_QUALITY_FLOOR)
        .order_by("-id")
        .only(
            "id",
            "input",
            "output",
            "corrected_output",
            "review_status",
            "served_by",
            "split",
            "input_hash",
            "diagnostics",
        )
    )
    pairs = [pair for call in calls.iterator(chunk_size=2000) if (pair := _pair(direction, call))]
    return deduplicate(pairs)


def deduplicate(pairs: Iterable[TrainingPair]) -> list[TrainingPair]:
    """Per input keep only the best tier present; drop repeats of the same (input, target).

    Different targets of one input in the same tier are kept: WebNLG gives several texts
    for one triple set, and each teaches the recomposer a valid wording.
    """
    ordered = sorted(pairs, key=lambda p: (p.tier, -p.call_id))
    best_tier: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in ordered:
        tier = best_tier.setdefault(pair.input_hash, pair.tier)
        key = (pair.input_hash, _target_key(pair.target))
        if pair.tier != tier or key in seen:
            continue
        seen.add(key)
        kept.append(pair)
    return kept


def split_pairs(
    pairs: list[TrainingPair], *, max_train: int | None = None, max_eval: int | None = None
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train, eval). Caps take a seeded random sample so runs are reproducible.

    Reviewed pairs (corrected or accepted: the gold set) of the eval split are always kept
    first when the eval set is capped; unreviewed ones fill the rest.
    """
    train = [p for p in pairs if p.split == "train"]
    evaluation = [p for p in pairs if p.split == "eval"]
    gold = [p for p in evaluation if p.tier < TIER_TEACHER]
    if max_eval is not None and len(evaluation) > max_eval:
        gold = _sample(gold, max_eval)
        rest = [p for p in evaluation if p.tier == TIER_TEACHER]
        evaluation = sorted(
            gold + _sample(rest, max_eval - len(gold)), key=lambda pair: pair.call_id
        )
    return _sample(train, max_train), evaluation


def _sample(pairs: list[TrainingPair], limit: int | None) -> list[TrainingPair]:
    if limit is None or len(pairs) <= limit:
        return pairs
    return sorted(random.Random(1234).sample(pairs, limit), key=lambda p: p.call_id)


def _pair(direction: str, call: BoundaryCall) -> TrainingPair | None:
    if call.review_status == ReviewStatus.CORRECTED:
        tier, output = TIER_CORRECTED, call.corrected_output
    elif call.review_status == ReviewStatus.ACCEPTED or call.served_by == ServedBy.IMPORTED:
        tier, output = TIER_ACCEPTED, call.output
    else:
        # Where the served answer mixed local triples with the LLM's, learn from the LLM's own
        # complete answer: a student must not be trained on its own guesses.
        tier, output = TIER_TEACHER, call.diagnostics.get("teacher_output", call.output)
    try:
        if direction == Direction.DECOMPOSITION:
            source: Any = str(call.input)
            target: Any = tuple(parse_triples(output))
        else:
            source = tuple(parse_triples(call.input))
            target = str(output).strip()
    except TripleValidationError:
        return None  # e.g. an LLM answer with no triples: nothing to learn from
    if not target or not source:
        return None
    return TrainingPair(call.pk, source, target, tier, call.split, call.input_hash)


def _target_key(target: str | tuple[Triple, ...]) -> str:
    if isinstance(target, str):
        return normalise_text(target)
    return "\n".join(sorted("|".join(normalise_text(f) for f in t.as_list()) for t in target))


# --- JSONL in and out --------------------------------------------------------------------


class ImportFileError(ValueError):
    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFileError(path, number, f"invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ImportFileError(path, number, "each line must be a JSON object")
            yield number, record


def import_pairs(
    path: Path,
    *,
    directions: Iterable[str] = (Direction.DECOMPOSITION, Direction.RECOMPOSITION),
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Store each {"text", "triples"} record as an imported pair, once per direction.

    Validates the whole file before writing anything, so a bad line imports nothing.
    `limit` keeps a seeded random sample of that many records.
    """
    records = []
    for number, record in read_jsonl(path):
        text, raw_triples = record.get("text"), record.get("triples")
        if not isinstance(text, str) or not text.strip():
            raise ImportFileError(path, number, '"text" must be a non-empty string')
        try:
            triples = parse_triples(raw_triples)
        except TripleValidationError as exc:
            raise ImportFileError(path, number, str(exc)) from None
        records.append((" ".join(text.split()), triples))
    if limit is not None and len(records) > limit:
        records = random.Random(seed).sample(records, limit)
    eval_fraction = settings.VALENCE_EVAL_FRACTION
    rows = []
    for text, triples in records:
        for direction in directions:
            if direction == Direction.DECOMPOSITION:
                call_input, output, digest = text, triples_to_json(triples), text_fingerprint(text)
            else:
                call_input, output = triples_to_json(triples), text
                digest = triples_fingerprint(triples)
            rows.append(
                BoundaryCall(
                    direction=direction,
                    input=call_input,
                    output=output,
                    input_hash=digest,
                    split=split_for(digest, eval_fraction),
                    served_by=ServedBy.IMPORTED,
                    latency_ms=0.0,
                )
            )
    with transaction.atomic():
        BoundaryCall.objects.bulk_create(rows, batch_size=1000)
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.direction)] = counts.get(str(row.direction), 0) + 1
    return counts


def export_pairs(path: Path, directions: Iterable[str]) -> int:
    """Write every eligible pair as a WebNLG-style record: {"id", "text", "triples", ...}."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for direction in directions:
            for pair in eligible_pairs(direction):
                text, triples = (
                    (pair.source, pair.target)
                    if direction == Direction.DECOMPOSITION
                    else (pair.target, pair.source)
                )
                record = {
                    "id": f"call/{pair.call_id}",
                    "direction": direction,
                    "text": text,
                    "triples": [t.as_list() for t in triples],
                    "split": pair.split,
                    "tier": ["corrected", "accepted", "teacher"][pair.tier],
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count
