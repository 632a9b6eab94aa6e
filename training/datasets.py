"""Training pairs from stored calls, and JSONL import/export in the WebNLG format.

A pair's tier says how much we trust it: a reviewer's correction beats an accepted answer or an
imported reference, which beats an unreviewed LLM answer. The split comes from the stored call
(a stable hash of its group: the triple set every wording of one fact shares, see
`boundary.fingerprint`), so the eval split is never trained on, run after run, and no eval text
or triple set reaches training under another wording (`split_pairs` withholds any that would).
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

from boundary.fingerprint import (
    group_key,
    split_for,
    text_fingerprint,
    text_key,
    triple_set_key,
    triples_fingerprint,
)
from boundary.models import BoundaryCall, Direction, ServedBy, Split
from boundary.triples import (
    STORED_LIMITS,
    Triple,
    TripleValidationError,
    normalise_text,
    parse_triples,
    triples_to_json,
)

TIER_CORRECTED, TIER_ACCEPTED, TIER_TEACHER = 0, 1, 2
_TIERS = {
    "corrected": TIER_CORRECTED,
    "accepted": TIER_ACCEPTED,
    "imported": TIER_ACCEPTED,
    "teacher": TIER_TEACHER,
}


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
    return deduplicate(stored_pairs(direction))


def stored_pairs(direction: str) -> list[TrainingPair]:
    """Every eligible pair of a direction as stored, repeats included, newest first."""
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
    return [pair for call in calls.iterator(chunk_size=2000) if (pair := _pair(direction, call))]


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


@dataclass(frozen=True)
class HeldOutKeys:
    """The texts and triple sets of every eval-split call, in both directions."""

    texts: frozenset[str] = frozenset()
    triple_sets: frozenset[str] = frozenset()

    def touches(self, pair: TrainingPair) -> bool:
        text, triples = _pair_content(pair)
        return text_key(text) in self.texts or triple_set_key(triples) in self.triple_sets


def held_out_keys() -> HeldOutKeys:
    """What no training pair may share with the eval split, whatever its own split says.

    Read from every eval-split call of both directions (not only eligible ones: a rejected
    answer's input is still evaluated on), so recomposition's eval set never leaks into
    decomposition training and the other way round.
    """
    texts: set[str] = set()
    triple_sets: set[str] = set()
    rows = BoundaryCall.objects.filter(split=Split.EVAL).values_list(
        "input", "output", "corrected_output"
    )
    for call_input, *outputs in rows.iterator(chunk_size=2000):
        for value in [call_input, *outputs]:
            if value is None:
                continue
            if isinstance(value, str):
                texts.add(text_key(value))
            elif (triples := _triples_or_none(value)) is not None:
                triple_sets.add(triple_set_key(triples))
    return HeldOutKeys(frozenset(texts), frozenset(triple_sets))


@dataclass
class DataSplit:
    train: list[TrainingPair]
    evaluation: list[TrainingPair]
    withheld: int  # train-split pairs left out because they share a text or triple set with eval


def split_pairs(
    pairs: list[TrainingPair],
    *,
    held_out: HeldOutKeys | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> DataSplit:
    """Train and eval pairs, leak-free. Caps take a seeded random sample (reproducible runs).

    A train-split pair that shares its text or triple set with an eval pair (or with any
    eval-split call in `held_out`) is withheld from training: the stored split groups by triple
    set, and this catches what grouping cannot see (one text stored with two triple sets).
    Reviewed pairs (corrected or accepted: the gold set) of the eval split are always kept
    first when the eval set is capped; unreviewed ones fill the rest.
    """
    evaluation = [p for p in pairs if p.split == "eval"]
    keys = _union(held_out or HeldOutKeys(), keys_of(evaluation))
    train, withheld = [], 0
    for pair in pairs:
        if pair.split != "train":
            continue
        if keys.touches(pair):
            withheld += 1
        else:
            train.append(pair)
    gold = [p for p in evaluation if p.tier < TIER_TEACHER]
    if max_eval is not None and len(evaluation) > max_eval:
        gold = _sample(gold, max_eval)
        rest = [p for p in evaluation if p.tier == TIER_TEACHER]
        evaluation = sorted(
            gold + _sample(rest, max_eval - len(gold)), key=lambda pair: pair.call_id
        )
    return DataSplit(_sample(train, max_train), evaluation, withheld)


def keys_of(pairs: Iterable[TrainingPair]) -> HeldOutKeys:
    contents = [_pair_content(pair) for pair in pairs]
    return HeldOutKeys(
        frozenset(text_key(text) for text, _ in contents),
        frozenset(triple_set_key(triples) for _, triples in contents),
    )


def _union(a: HeldOutKeys, b: HeldOutKeys) -> HeldOutKeys:
    return HeldOutKeys(a.texts | b.texts, a.triple_sets | b.triple_sets)


def _pair_content(pair: TrainingPair) -> tuple[str, tuple[Triple, ...]]:
    """(text, triple set) of a pair, whichever way round its direction reads them."""
    if isinstance(pair.source, str) and not isinstance(pair.target, str):
        return pair.source, pair.target
    if isinstance(pair.target, str) and not isinstance(pair.source, str):
        return pair.target, pair.source
    raise TypeError(f"pair {pair.call_id} has no text side")


def _triples_or_none(value: Any) -> list[Triple] | None:
    try:
        return parse_triples(value, STORED_LIMITS)
    except TripleValidationError:
        return None


def _sample(pairs: list[TrainingPair], limit: int | None) -> list[TrainingPair]:
    if limit is None or len(pairs) <= limit:
        return pairs
    return sorted(random.Random(1234).sample(pairs, limit), key=lambda p: p.call_id)


def _pair(direction: str, call: BoundaryCall) -> TrainingPair | None:
    kind, output = call.label()
    tier = _TIERS[kind]
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
    eval_fraction: float | None = None,
) -> dict[str, int]:
    """Store each {"text", "triples"} record as an imported pair, once per direction.

    Validates the whole file before writing anything, so a bad line imports nothing.
    `limit` keeps a seeded random sample of that many records. `eval_fraction` (default
    VALENCE_EVAL_FRACTION) is the share of triple sets that go to the eval split.
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
    if eval_fraction is None:
        eval_fraction = settings.VALENCE_EVAL_FRACTION
    rows = []
    for text, triples in records:
        group = group_key(triples=triples)  # both directions of a record share it
        for direction in directions:
            call_input: Any
            output: Any
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
                    group_key=group,
                    split=split_for(group, eval_fraction),
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
                text, triples = _pair_content(pair)
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
