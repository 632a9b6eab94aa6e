"""Seen and unseen entities: how a decomposer does on names it never trained on (Django-free).

New names in a known domain are the ordinary case for a user's traffic, so the score of texts
whose entities never occur in the training data is reported beside that of texts whose
entities all do. An entity is a triple's subject or object, matched by the cascade's
normalisation (case, spacing and naming style ignored).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from boundary.triples import Triple, normalise_text

SEEN, MIXED, UNSEEN = "seen", "mixed", "unseen"
GROUPS = (SEEN, MIXED, UNSEEN)


def entities_of(triples: Iterable[Triple]) -> set[str]:
    found: set[str] = set()
    for triple in triples:
        found.add(normalise_text(triple.subject))
        found.add(normalise_text(triple.object))
    return found


def known_entities(triple_sets: Iterable[Sequence[Triple]]) -> set[str]:
    """Every entity of the training data."""
    known: set[str] = set()
    for triples in triple_sets:
        known |= entities_of(triples)
    return known


def novelty(triples: Sequence[Triple], known: set[str]) -> str:
    """`seen`: every entity occurs in training; `unseen`: none does; `mixed`: some do."""
    mine = entities_of(triples)
    overlap = len(mine & known)
    if overlap == len(mine):
        return SEEN
    return UNSEEN if overlap == 0 else MIXED
