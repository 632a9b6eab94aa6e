"""Benchmark metrics for both directions of the boundary (Django-free).

Text -> triples (`score_decomposition`) re-implements the WebNLG 2020 text-to-RDF scorer
(WebNLG/WebNLG-Text-to-triples, Evaluation_script.py) as shared/data/webnlg/README.md describes
it. Triples -> text (`score_recomposition`) is sacreBLEU's BLEU and chrF++, which reproduce the
published WebNLG+ 2020 generation scores.

Where the 2020 script differs from that description, we follow the description, so that a
prediction identical to its reference always scores 1.0:
- Punctuation-only tokens (ASCII or Unicode punctuation) are dropped on both sides in every
  comparison. The script dropped ASCII-punctuation tokens from references but only
  single-character ones from candidates (so an identical quoted literal, tokenised as `` ... '',
  lost Exact credit), and every token *containing* punctuation (such as "2702.0") in the swap
  retries.
- Overlap includes a span's last word. nervaluate 0.1.7, the version the script pinned, left it
  out (nervaluate issue #38, fixed in 0.2.0), so a one-word span never partially overlapped.
  Otherwise we count as 0.1.7 did: every predicted span that overlaps the reference counts.
- Candidate spans are one per matched n-gram, widened by linked words, plus one spurious span
  per block of other unmatched words. The script also emitted duplicate spans next to an
  unmatched reference word.
- A swap retry keeps the in-place predicate. The script's subject/object retry rescored the
  predicate against the wrong elements and placed spans of different elements on overlapping
  offsets (a cleanly swapped triple got Exact F1 0.57 there, 1.0 here).
- The tokeniser is a small copy of nltk's Treebank rules (nltk is not a dependency): brackets,
  quotes, ?!;@#$%&*, dashes other than "-", commas and colons not before a digit, and the final
  period are split off, and so are clitics ('s, n't); word-internal periods, hyphens and
  apostrophes stay.
- Fields are normalised by the cascade's own matching key (boundary.triples.normalise_text),
  so the scorer and the cascade agree on what counts as the same triple: NFC, surrounding
  quotes dropped, underscores as spaces, camelCase split at any lower-to-upper change (not only
  ASCII ones), casefold (the script lower-cased), whitespace collapsed.
- Pairing uses the Hungarian algorithm; among equally good pairings it may pick another one
  than the script's first-found permutation (same total, possibly other P/R).

So the same predictions score higher here than with the 2020 script: it scores a third of
WebNLG dev against itself at Exact F1 0.963, and perturbed predictions for it at 0.607 where
this module gives 0.635. With the script changed in the ways above, the two agree pair for
pair (checked on 61,000 perturbed dev pairs).
Keep that in mind next to published numbers.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import sacrebleu
from scipy.optimize import linear_sum_assignment

from boundary.triples import Triple, normalise_text

__all__ = ["PRF", "SCHEMES", "score_decomposition", "score_recomposition", "triple_set_f1"]

SCHEMES = ("strict", "exact", "partial", "ent_type")


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, precision: float, recall: float) -> PRF:
        total = precision + recall
        return cls(precision, recall, 2 * precision * recall / total if total else 0.0)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


_ZERO = PRF(0.0, 0.0, 0.0)
_ZERO_PAIR = (_ZERO,) * len(SCHEMES)


def check_paired(predictions: Sequence[object], references: Sequence[object]) -> None:
    """Predictions and references are paired by position, so their counts must match."""
    if len(predictions) != len(references):
        raise ValueError(
            f"Got {len(predictions)} predictions for {len(references)} references; "
            "they are paired by position."
        )


# --- text -> triples ------------------------------------------------------------------------


def score_decomposition(
    predictions: Sequence[Sequence[Triple]], references: Sequence[Sequence[Triple]]
) -> dict[str, Any]:
    """Score prediction i against reference i; P/R/F1 per scheme are plain means over pairs."""
    check_paired(predictions, references)
    sums = np.zeros((len(SCHEMES), 3))
    pairs = 0
    set_counts = np.zeros(3, dtype=int)  # true positives, predicted, reference
    for predicted, reference in zip(predictions, references, strict=True):
        for pair in _score_entry(predicted, reference):
            sums += [[s.precision, s.recall, s.f1] for s in pair]
            pairs += 1
        set_counts += _set_counts(predicted, reference)
    means = sums / pairs if pairs else sums
    report: dict[str, Any] = {"entries": len(references), "pairs": pairs}
    for scheme, (precision, recall, f1) in zip(SCHEMES, means.tolist(), strict=True):
        report[scheme] = PRF(precision, recall, f1).as_dict()
    report["exact_set"] = _set_prf(*set_counts.tolist()).as_dict()
    return report


def triple_set_f1(prediction: Sequence[Triple], reference: Sequence[Triple]) -> float:
    """F1 of exact matches between the normalised triple sets of one entry (1.0 if both empty)."""
    return _set_prf(*_set_counts(prediction, reference)).f1


def _set_counts(prediction: Sequence[Triple], reference: Sequence[Triple]) -> tuple[int, int, int]:
    predicted = {_normalise_triple(t) for t in prediction}
    expected = {_normalise_triple(t) for t in reference}
    return len(predicted & expected), len(predicted), len(expected)


def _set_prf(true_positives: int, predicted: int, expected: int) -> PRF:
    if not predicted and not expected:
        return PRF(1.0, 1.0, 1.0)  # nothing to find and nothing wrong
    return PRF.of(
        true_positives / predicted if predicted else 0.0,
        true_positives / expected if expected else 0.0,
    )


def _score_entry(predicted: Sequence[Triple], reference: Sequence[Triple]) -> list[tuple[PRF, ...]]:
    """Scores of the best one-to-one pairing; the shorter side is padded with empty triples."""
    cands = [_prepare(t) for t in predicted]
    refs = [_prepare(t) for t in reference]
    padding = abs(len(cands) - len(refs))
    if not cands or not refs:
        return [_ZERO_PAIR] * padding
    table = [[_score_pair(c, r) for r in refs] for c in cands]
    # The pairing maximises the summed mean of the four F1s, as the official script does.
    weights = np.array([[sum(s.f1 for s in pair) / len(SCHEMES) for pair in row] for row in table])
    rows, cols = linear_sum_assignment(weights, maximize=True)
    # An empty triple paired with a real one scores 0 in every scheme (all missed or spurious).
    return [table[i][j] for i, j in zip(rows, cols, strict=True)] + [_ZERO_PAIR] * padding


_Words = tuple[str, ...]
_Prepared = tuple[_Words, _Words, _Words]

# Span outcomes ("relabelled": another role than the reference's, after a swap retry) ...
_EQUAL, _RELABELLED, _OVERLAP, _OVERLAP_RELABELLED, _SPURIOUS, _MISSED = range(6)
# ... and what each counts as in each scheme (SemEval-2013 Task 9.1): correct, incorrect,
# partial, missed or spurious.
_C, _I, _P, _M, _S = range(5)
_KIND = (
    # equal, relabelled, overlap, overlap relabelled, spurious, missed
    (_C, _I, _I, _I, _S, _M),  # strict: same boundaries and role
    (_C, _C, _I, _I, _S, _M),  # exact: same boundaries, any role
    (_C, _C, _P, _P, _S, _M),  # partial: overlap counts half, any role
    (_C, _I, _C, _I, _S, _M),  # ent_type: any overlap with the right role
)
_SWAPS = ((0, 2), (0, 1), (1, 2))  # subject/object, subject/predicate, predicate/object


@lru_cache(maxsize=1 << 16)
def _score_pair(cand: _Prepared, ref: _Prepared) -> tuple[PRF, ...]:
    slots = [_compare(ref[k], cand[k], same_role=True) for k in range(3)]
    found = [slot[0] for slot in slots]
    for a, b in _SWAPS:
        if not found[a] and not found[b]:
            first = _compare(ref[a], cand[b], same_role=False)
            second = _compare(ref[b], cand[a], same_role=False)
            if first[0] or second[0]:
                slots[a], slots[b] = first, second
                break
    outcomes = [sum(column) for column in zip(*(slot[1] for slot in slots), strict=True)]
    scores = []
    for kinds in _KIND:
        counts = [0] * 5
        for outcome, number in enumerate(outcomes):
            counts[kinds[outcome]] += number
        correct, incorrect, partial, missed, spurious = counts
        credit = correct + 0.5 * partial
        actual = correct + incorrect + partial + spurious
        possible = correct + incorrect + partial + missed
        scores.append(
            PRF.of(credit / actual if actual else 0.0, credit / possible if possible else 0.0)
        )
    return tuple(scores)


@lru_cache(maxsize=1 << 16)
def _compare(ref: _Words, cand: _Words, *, same_role: bool) -> tuple[bool, tuple[int, ...]]:
    """Whether any candidate word matched, and the outcome counts of the candidate's spans."""
    counts = [0] * 6
    if not ref or not cand:
        counts[_MISSED] = int(bool(ref))
        counts[_SPURIOUS] = int(bool(cand))
        return False, tuple(counts)
    ref_index, group = _match(ref, cand) if not set(ref).isdisjoint(cand) else ([], [])
    matched = [i for i, r in enumerate(ref_index) if r >= 0]
    if not matched:
        counts[_MISSED] = counts[_SPURIOUS] = 1
        return False, tuple(counts)

    first, last = matched[0], matched[-1]
    # Unmatched words before the first match join its span if that match starts the reference;
    # those after the last match join its span if that match ends the reference.
    link_before = ref_index[first] == 0
    link_after = ref_index[last] == len(ref) - 1
    spans: dict[int, list[int]] = {}
    for i in matched:
        span = spans.setdefault(group[i], [ref_index[i], ref_index[i]])
        span[0], span[1] = min(span[0], ref_index[i]), max(span[1], ref_index[i])
    if link_before:
        spans[group[first]][0] -= first
    if link_after:
        spans[group[last]][1] += len(cand) - 1 - last
    for start, end in spans.values():
        exact = start == 0 and end == len(ref) - 1
        if same_role:
            counts[_EQUAL if exact else _OVERLAP] += 1
        else:
            counts[_RELABELLED if exact else _OVERLAP_RELABELLED] += 1

    # Every other block of unmatched words is a spurious span.
    for i in range(len(cand)):
        linked = (link_before and i < first) or (link_after and i > last)
        if ref_index[i] < 0 and not linked and (i == 0 or ref_index[i - 1] >= 0):
            counts[_SPURIOUS] += 1
    return True, tuple(counts)


def _match(ref: _Words, cand: _Words) -> tuple[list[int], list[int]]:
    """Greedy longest-common-n-gram matching of candidate words to reference words.

    Scanning the candidate left to right, the first n-gram that occurs among the still unmatched
    reference words is matched to its first occurrence; n starts at the candidate's length and
    drops when no n-gram of that size matches. Returns, per candidate word, the reference index
    it matched (-1 if none) and the number of its n-gram.
    """
    ref_taken = [False] * len(ref)
    ref_index = [-1] * len(cand)
    group = [-1] * len(cand)
    groups = 0
    size = min(len(cand), len(ref))
    while size > 0:
        for start in range(len(cand) - size + 1):
            if any(ref_index[i] >= 0 for i in range(start, start + size)):
                continue
            gram = cand[start : start + size]
            at = _find_free(ref, ref_taken, gram)
            if at is None:
                continue
            for offset in range(size):
                ref_taken[at + offset] = True
                ref_index[start + offset] = at + offset
                group[start + offset] = groups
            groups += 1
            break  # rescan at the same size: the script recurses here
        else:
            size -= 1
    return ref_index, group


def _find_free(ref: _Words, taken: list[bool], gram: _Words) -> int | None:
    size = len(gram)
    for at in range(len(ref) - size + 1):
        if ref[at : at + size] == gram and not any(taken[at : at + size]):
            return at
    return None


@lru_cache(maxsize=1 << 16)
def _prepare(triple: Triple) -> _Prepared:
    subject, predicate, obj = _normalise_triple(triple)
    return _words(subject), _words(predicate), _words(obj)


# The script drops the first " (" and all after it when the object ends with ")".
_TRAILING_PARENS = re.compile(r"^(.*?) \(.*\)$")


@lru_cache(maxsize=1 << 16)
def _normalise_triple(triple: Triple) -> tuple[str, str, str]:
    obj = normalise_text(triple.object)
    if trailing := _TRAILING_PARENS.match(obj):
        obj = trailing.group(1)
    return normalise_text(triple.subject), normalise_text(triple.predicate), obj


# Treebank-style splitting (what nltk.word_tokenize does, in brief).
_SPLITS = (
    (re.compile(r"(\.{2,}|--|[\[\](){}<>\"?!;@#$%&*`«»“”‘’„\u2012-\u2015])"), r" \1 "),
    (re.compile(r"([,:])(?!\d)"), r" \1 "),  # keeps "1,000" and "12:30" whole
    (re.compile(r"(?<=[^.])\.(?=[\s\])}>\"'»”’]*$)"), " . "),  # the final period only
    (re.compile(r"(?:(?<=\s)|^)'(?!(?:s|m|d|ll|re|ve|t)\b)"), " ' "),  # an opening quote
    (re.compile(r"(?<=[^'\s])('s|'m|'d|'ll|'re|'ve|n't|')(?=\s|$)"), r" \1 "),
)
_ASCII_PUNCTUATION = frozenset(string.punctuation)


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> _Words:
    for pattern, replacement in _SPLITS:
        text = pattern.sub(replacement, text)
    return tuple(token for token in text.split() if not _is_punctuation(token))


def _is_punctuation(token: str) -> bool:
    return all(
        char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P") for char in token
    )


# --- triples -> text ------------------------------------------------------------------------


def score_recomposition(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Corpus BLEU and chrF++ of hypothesis i against every reference of entry i."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"Got {len(hypotheses)} hypotheses for {len(references)} reference lists; "
            "they are paired by position."
        )
    if any(not refs for refs in references):
        raise ValueError("Every entry needs at least one reference.")
    if not hypotheses:
        return {"entries": 0, "bleu": 0.0, "chrf_pp": 0.0}
    hyps = list(hypotheses)
    # sacreBLEU wants one stream per reference position. Entries with fewer references get None,
    # which sacreBLEU drops for that segment. A blank string (the official files' padding) would
    # count as a zero-length reference instead: it can become BLEU's closest reference length and
    # lift the brevity penalty of short hypotheses.
    width = max(len(refs) for refs in references)
    streams: Any = [
        [refs[k] if k < len(refs) else None for refs in references] for k in range(width)
    ]
    return {
        "entries": len(hyps),
        "bleu": sacrebleu.corpus_bleu(hyps, streams).score,
        "chrf_pp": sacrebleu.corpus_chrf(hyps, streams, word_order=2).score,
    }
