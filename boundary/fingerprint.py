"""Stable identity of an input: the dedup key, the leak-free group key and the train/eval split.

The split must never change for a given input, across processes and releases, so it comes from
a cryptographic hash of a canonical form, not from Python's randomised `hash()`.

The split is decided by a *group* key, not by the input alone: WebNLG (and any real traffic)
has several texts for one triple set, and a model evaluated on a text whose triple set it was
trained on under another wording has memorised the answer. So a pair's group is its triple set
(decomposition: the target; recomposition: the input), normalised as matching normalises it,
and every text of one triple set lands in the same split, in both directions. A call with no
triple set yet (an unserved decomposition) is grouped by its text. What a hash cannot see (one
text with two different triple sets) the dataset builder catches: a training pair that shares a
text or a triple set with any eval-split call is left out of training (see
`training.datasets.split_pairs`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

from boundary.directions import DECOMPOSITION
from boundary.triples import (
    STORED_LIMITS,
    Triple,
    TripleValidationError,
    normalise_text,
    normalise_triple,
    parse_triples,
    to_linear,
)

TRAIN = "train"
EVAL = "eval"


def text_fingerprint(text: str) -> str:
    canonical = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(b"text\x00" + _utf8(canonical)).hexdigest()


def triples_fingerprint(triples: Sequence[Triple]) -> str:
    # Order of triples does not change their meaning, so it must not change the fingerprint.
    canonical = to_linear(sorted(triples, key=lambda t: (t.subject, t.predicate, t.object)))
    return hashlib.sha256(b"triples\x00" + _utf8(canonical)).hexdigest()


def text_key(text: str) -> str:
    """A text's matching form: two texts with the same key are the same input for a leak."""
    return normalise_text(text)


def triple_set_key(triples: Sequence[Triple]) -> str:
    """A triple set's matching form (order, duplicates, case and naming style ignored)."""
    return "\n".join(sorted({"\x1f".join(normalise_triple(t)) for t in triples}))


def group_key(*, triples: Sequence[Triple] | None = None, text: str | None = None) -> str:
    """The split group of a pair: its triple set when there is one, else its text."""
    if triples:
        return hashlib.sha256(b"group-triples\x00" + _utf8(triple_set_key(triples))).hexdigest()
    return hashlib.sha256(b"group-text\x00" + _utf8(text_key(text or ""))).hexdigest()


def split_for(fingerprint: str, eval_fraction: float) -> str:
    bucket = int(fingerprint[:8], 16) / 0x1_0000_0000
    return EVAL if bucket < eval_fraction else TRAIN


def _utf8(value: str) -> bytes:
    # A lone surrogate cannot be encoded; hash it escaped rather than fail the request.
    return value.encode("utf-8", "surrogatepass")


def call_group_key(direction: str, call_input: object, label: object) -> str:
    """The group of a stored call: `label` is its training target (triples or text, or None)."""
    raw_triples, text = (label, call_input) if direction == DECOMPOSITION else (call_input, label)
    try:
        triples = parse_triples(raw_triples, STORED_LIMITS) if raw_triples else None
    except TripleValidationError:
        triples = None
    return group_key(triples=triples, text=text if isinstance(text, str) else None)
