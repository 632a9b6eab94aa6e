"""Stable identity of an input: the dedup key and the train/eval split.

The split must never change for a given input, across processes and releases, so it comes from
a cryptographic hash of a canonical form, not from Python's randomised `hash()`.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

from boundary.triples import Triple, to_linear

TRAIN = "train"
EVAL = "eval"


def text_fingerprint(text: str) -> str:
    canonical = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(b"text\x00" + canonical.encode("utf-8")).hexdigest()


def triples_fingerprint(triples: Sequence[Triple]) -> str:
    # Order of triples does not change their meaning, so it must not change the fingerprint.
    canonical = to_linear(sorted(triples, key=lambda t: (t.subject, t.predicate, t.object)))
    return hashlib.sha256(b"triples\x00" + canonical.encode("utf-8")).hexdigest()


def split_for(fingerprint: str, eval_fraction: float) -> str:
    bucket = int(fingerprint[:8], 16) / 0x1_0000_0000
    return EVAL if bucket < eval_fraction else TRAIN
