"""How far a span decomposer can get: the alignment and the normaliser, fed the reference spans.

An encoder can only point at words of the sentence and let the learned normaliser rewrite
them. So before blaming the model, measure the part no model can fix: learn the normaliser on
some records, then, for each other record, align its reference entities to its sentence and
normalise those spans. The share of records whose triple set comes out exactly right is the
ceiling of any span-based decomposer with this alignment and normaliser. Records are parted
by their WebNLG entry (every wording of one triple set on the same side), Django-free.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from boundary.triples import Triple, parse_triples, same_triples
from training.normaliser import align, normaliser_from_alignments


@dataclass
class Ceiling:
    records: int
    all_aligned: int  # records whose every entity was found in the sentence
    exactly_right: int  # records whose normalised spans give the reference triple set
    misses: Counter[str] = field(default_factory=Counter)  # "unaligned" / "normalised wrong"

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "all_aligned": self.all_aligned / self.records if self.records else 0.0,
            "exactly_right": self.exactly_right / self.records if self.records else 0.0,
            "triple_misses": dict(self.misses),
        }


def held_out_fold(record: dict[str, Any], folds: int = 5) -> bool:
    """Whether a record is in the scored fold (a stable hash of its entry)."""
    entry = str(record.get("entry_id") or record.get("id") or record["text"])
    return int(hashlib.sha256(entry.encode("utf-8")).hexdigest(), 16) % folds == 0


def span_ceiling(learn_on: Sequence[dict[str, Any]], score_on: Sequence[dict[str, Any]]) -> Ceiling:
    normaliser = normaliser_from_alignments(
        (r["text"], triples, align(r["text"], triples))
        for r in learn_on
        for triples in [parse_triples(r["triples"])]
    )
    ceiling = Ceiling(len(score_on), 0, 0)
    for record in score_on:
        text, triples = record["text"], parse_triples(record["triples"])
        spans = align(text, triples)
        rebuilt: list[Triple] = []
        for triple in triples:
            if triple.subject not in spans or triple.object not in spans:
                ceiling.misses["unaligned"] += 1
                continue
            subject, obj = (
                normaliser.canonical(text[slice(*spans[e])], triple.predicate, role)
                for e, role in ((triple.subject, "subject"), (triple.object, "object"))
            )
            rebuilt.append(Triple(subject, triple.predicate, obj))
            if not same_triples([rebuilt[-1]], [triple]):
                ceiling.misses["normalised wrong"] += 1
        if len(rebuilt) == len(triples):
            ceiling.all_aligned += 1
            ceiling.exactly_right += same_triples(rebuilt, triples)
    return ceiling
