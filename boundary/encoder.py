"""Serving the decomposition encoder: tokenizers + onnxruntime + a little numpy (Django-free).

The artefact (written by `training.trainers.encoder.export_encoder`) is a folder:
- `model.onnx`: encoder and per-token heads (int8 dynamic quantisation by default) returning
  BIO tag probabilities, fact-count probabilities and five projections per token (four
  span-end slots, and a context slot averaged over the words between a pair's spans; artefacts
  from before that have only the four);
- `pairs.onnx`: the relation classifier over (subject span, object span) pairs;
- `tokenizer.json`, and `encoder.json` with the predicate labels and the learned normaliser.

Each triple's confidence is P(relation) × P(subject span) × P(object span), where a span's
probability is the product of its tokens' tag probabilities and of the boundary after it.
`complete` estimates that nothing was missed: P(count = triples found) times P(none) of every
span pair that produced no triple (and 0 for a text longer than the encoder reads). The
cascade keeps triples at or above the version's threshold and asks the next stage for the rest
when anything is uncertain or missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boundary.entities import Normaliser
from boundary.students import StudentAnswer
from boundary.triples import Triple, TripleValidationError, normalise_triple, parse_triples

ARTIFACT_VERSION = 1
MAX_COUNT = 8  # the count head's classes are 0..MAX_COUNT ("MAX_COUNT or more")
TAG_O, TAG_B, TAG_I = 0, 1, 2
_WORD_CHAR = re.compile(r"\w")
_LEADING_JUNK = set(" ,;:)")
_TRAILING_JUNK = set(" ,;:(")


@dataclass(frozen=True)
class Span:
    start: int  # first token
    end: int  # last token (inclusive)
    char_start: int
    char_end: int
    probability: float


@dataclass(frozen=True)
class Reading:
    """What one pass computed: the answer, and the probabilities behind it (for studies of
    its confidence, tools/encoder_confidence.py)."""

    triples: list[Triple]
    confidences: tuple[float, ...]  # of each triple
    complete: float
    tag_probs: np.ndarray  # tokens x (O, B, I)
    special_tokens: list[int]  # 1 for [CLS], [SEP]
    count_probs: np.ndarray
    spans: list[Span]
    pairs: list[tuple[int, int]]  # ordered span pairs, as `relation_probs` rows
    relation_probs: np.ndarray  # pairs x ("none", *predicates)


class EncoderStudent:
    """A decomposition-only student; asking it to recompose is a programming error."""

    def __init__(self, folder: Path | str, *, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = json.loads((folder / "encoder.json").read_text())
        if meta.get("artifact_version") != ARTIFACT_VERSION:
            raise ValueError(
                f"{folder} holds encoder artefact version {meta.get('artifact_version')!r}; "
                f"this code reads version {ARTIFACT_VERSION}"
            )
        self.predicates: list[str] = meta["predicates"]
        self.normaliser = Normaliser.from_dict(meta["normaliser"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(meta["max_length"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the CPU other web workers need between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        cpu = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=cpu)
        self.pairs = ort.InferenceSession(str(folder / "pairs.onnx"), options, providers=cpu)

    def decompose(self, text: str) -> StudentAnswer:
        reading = self.read(text)
        return StudentAnswer(
            output=reading.triples,
            confidence=min((reading.complete, *reading.confidences)),
            triple_confidences=reading.confidences,
            complete=reading.complete,
        )

    def read(self, text: str) -> Reading:
        """One pass over `text`: the answer, and what it was computed from."""
        encoding = self.tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        tag_probs, count_probs, projections = self.session.run(
            None, {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        )
        spans = decode_spans(tag_probs[0], encoding.special_tokens_mask, encoding.offsets, text)
        found: dict[tuple[str, str, str], tuple[Triple, float]] = {}
        doubt = 1.0  # P(no fact hides in a pair that produced none)
        pairs = [(i, j) for i in range(len(spans)) for j in range(len(spans)) if i != j]
        relation_probs = np.zeros((0, len(self.predicates) + 1), dtype=np.float32)
        if pairs:
            pair_input = _pair_input(projections[0], spans, pairs)
            relation_probs = self.pairs.run(None, {"pair_input": pair_input})[0]
            for (i, j), probs in zip(pairs, relation_probs, strict=True):
                best = int(np.argmax(probs))
                if best == 0:
                    doubt *= float(probs[0])
                    continue
                triple = self._triple(text, spans[i], spans[j], self.predicates[best - 1])
                if triple is None:
                    continue
                confidence = float(probs[best]) * spans[i].probability * spans[j].probability
                key = normalise_triple(triple)
                if key not in found or found[key][1] < confidence:
                    found[key] = (triple, confidence)
        triples = [triple for triple, _ in found.values()]
        complete = float(count_probs[0][min(len(triples), MAX_COUNT)]) * doubt
        if encoding.overflowing:  # the text went past max_length: the rest was never read
            complete = 0.0
        return Reading(
            triples=triples,
            confidences=tuple(confidence for _, confidence in found.values()),
            complete=complete,
            tag_probs=tag_probs[0],
            special_tokens=list(encoding.special_tokens_mask),
            count_probs=count_probs[0],
            spans=spans,
            pairs=pairs,
            relation_probs=relation_probs,
        )

    def recompose(self, triples: Sequence[Triple]) -> StudentAnswer:
        raise TypeError("an encoder version only decomposes")

    def _triple(self, text: str, subject: Span, obj: Span, predicate: str) -> Triple | None:
        subject_text = self.normaliser.canonical(
            text[subject.char_start : subject.char_end], predicate, "subject"
        )
        object_text = self.normaliser.canonical(
            text[obj.char_start : obj.char_end], predicate, "object"
        )
        try:
            return parse_triples([[subject_text, predicate, object_text]])[0]
        except TripleValidationError:  # e.g. a span that normalises to nothing
            return None


def decode_spans(
    tag_probs: np.ndarray,
    special: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    text: str,
) -> list[Span]:
    """BIO decoding; an I without an open span starts one. Spans snap to whole words."""
    tags = tag_probs.argmax(-1)
    spans: list[Span] = []
    start: int | None = None
    probability = 1.0

    def close(first: int, end: int) -> None:
        after = end + 1
        boundary = 1.0 - float(tag_probs[after, TAG_I]) if after < len(tags) else 1.0
        char_start, char_end = _snap_to_words(text, offsets[first][0], offsets[end][1])
        spans.append(Span(first, end, char_start, char_end, probability * boundary))

    for i, tag in enumerate(tags):
        if special[i] or tag == TAG_O or (tag == TAG_B and start is not None):
            if start is not None:
                close(start, i - 1)
                start = None
            if special[i] or tag == TAG_O:
                continue
        if start is None:
            start, probability = i, float(tag_probs[i, tag])
        else:
            probability *= float(tag_probs[i, tag])
    if start is not None:
        close(start, len(tags) - 1)
    return [span for span in spans if span.char_end > span.char_start]


def _snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Whole words, without the list punctuation around them ("red beans," → "red beans"),
    and brackets balanced ("black pudding (morcilla" → "black pudding (morcilla)")."""
    while start > 0 and _WORD_CHAR.match(text[start - 1]) and _WORD_CHAR.match(text[start]):
        start -= 1
    while end < len(text) and _WORD_CHAR.match(text[end]) and _WORD_CHAR.match(text[end - 1]):
        end += 1
    while start < end and text[start] in _LEADING_JUNK:
        start += 1
    while end > start and text[end - 1] in _TRAILING_JUNK:
        end -= 1
    opened = text.count("(", start, end) - text.count(")", start, end)
    if opened > 0 and end < len(text) and text[end] == ")":
        end += 1
    elif opened > 0 and text[start] == "(":
        start += 1
    return start, end


def _pair_input(
    projections: np.ndarray, spans: Sequence[Span], pairs: Sequence[tuple[int, int]]
) -> np.ndarray:
    subjects = (
        np.asarray([spans[i].start for i, _ in pairs]),
        np.asarray([spans[i].end for i, _ in pairs]),
    )
    objects = (
        np.asarray([spans[j].start for _, j in pairs]),
        np.asarray([spans[j].end for _, j in pairs]),
    )
    summed: np.ndarray = (
        projections[subjects[0], 0]
        + projections[subjects[1], 1]
        + projections[objects[0], 2]
        + projections[objects[1], 3]
    )
    if projections.shape[1] > 4:  # artefacts since 2026-11-29 also read the words between
        summed = summed + between_tokens(projections[:, 4], subjects, objects)
    return summed.astype(np.float32)


def between_tokens(
    context: np.ndarray,
    subjects: tuple[np.ndarray, np.ndarray],
    objects: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Per pair, the mean of `context` over the tokens strictly between its two spans (zero
    when they touch): the verb that says which relation holds."""
    prefix = np.concatenate([np.zeros_like(context[:1]), np.cumsum(context, axis=0)])
    low = np.minimum(subjects[1], objects[1]) + 1
    high = np.maximum(subjects[0], objects[0])
    count = np.clip(high - low, 0, None)
    summed = prefix[np.clip(high, 0, None)] - prefix[np.clip(low, None, len(context))]
    mean: np.ndarray = np.where((count > 0)[:, None], summed / np.maximum(count, 1)[:, None], 0.0)
    return mean
