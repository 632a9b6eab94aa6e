"""Run a student over reference examples, score it, and calibrate its threshold (Django-free).

Agreement (what calibration counts as "right") is deliberately strict and reference-based:
- decomposition: the predicted triple set equals the reference after normalisation;
- recomposition: the text mentions every subject and object of its triples (normalised), a
  faithfulness check that needs no single "correct" wording.
The threshold is the lowest confidence whose accepted answers agree at least `target` of the time.
For a student that scores each triple (the encoder), the same threshold also decides which
triples the cascade keeps when the answer as a whole is unsure, so it must also keep the
accepted triples right at least `target` of the time (see `calibrate_per_triple`).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from boundary.prompts import DECOMPOSITION
from boundary.students import StudentBackend
from boundary.triples import Triple, normalise_text, normalise_triple, same_triples, to_linear
from training.scoring import score_decomposition, score_recomposition


@dataclass(frozen=True)
class Example:
    """One input and every acceptable reference output for it."""

    source: str | tuple[Triple, ...]
    references: tuple[Any, ...]  # tuples of Triple (decomposition) or strings (recomposition)


@dataclass
class Prediction:
    output: Any = None  # list[Triple] | str | None when the student failed
    confidence: float = 0.0
    latency_ms: float = 0.0
    error: str = ""
    triple_confidences: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Calibration:
    threshold: float  # 1.0 with coverage 0 when no threshold reaches the target
    expected_fallback_rate: float
    accepted_agreement: float | None
    target: float


@dataclass
class Report:
    metrics: dict[str, Any]
    calibration: Calibration
    latency_p50_ms: float
    latency_p95_ms: float
    agreements: list[bool] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)


def fingerprint(examples: Sequence[Example]) -> str:
    """Same inputs, same hash: metrics with equal fingerprints are comparable."""
    digest = hashlib.sha256()
    for example in examples:
        source = example.source if isinstance(example.source, str) else to_linear(example.source)
        digest.update(source.encode("utf-8") + b"\x00")
    return digest.hexdigest()


def predict(
    student: StudentBackend, direction: str, examples: Sequence[Example]
) -> list[Prediction]:
    predictions = []
    for example in examples:
        started = time.perf_counter()
        try:
            if direction == DECOMPOSITION:
                answer = student.decompose(str(example.source))
            else:
                answer = student.recompose(list(example.source))
            prediction = Prediction(
                answer.output, answer.confidence, triple_confidences=answer.triple_confidences
            )
        except Exception as exc:  # a failure is a wrong answer, not a crashed evaluation
            prediction = Prediction(error=f"{type(exc).__name__}: {exc}"[:300])
        prediction.latency_ms = (time.perf_counter() - started) * 1000
        predictions.append(prediction)
    return predictions


def agrees(direction: str, prediction: Prediction, example: Example) -> bool:
    if prediction.output is None:
        return False
    if direction == DECOMPOSITION:
        return any(same_triples(prediction.output, ref) for ref in example.references)
    return mentions_every_entity(prediction.output, example.source)


def mentions_every_entity(text: str, triples: Sequence[Triple]) -> bool:
    haystack = normalise_text(text)
    entities = {normalise_text(t.subject) for t in triples} | {
        normalise_text(t.object) for t in triples
    }
    return all(entity in haystack for entity in entities)


def calibrate(
    confidences: Sequence[float], agreements: Sequence[bool], target: float
) -> Calibration:
    """The lowest threshold whose accepted answers reach `target` agreement."""
    if not confidences:
        return Calibration(1.0, 1.0, None, target)
    ranked = sorted(zip(confidences, agreements, strict=True), key=lambda pair: -pair[0])
    best: tuple[float, int, float] | None = None
    right = 0
    for count, (confidence, agreed) in enumerate(ranked, start=1):
        right += agreed
        is_last_of_tie = count == len(ranked) or ranked[count][0] != confidence
        if is_last_of_tie and right / count >= target:
            best = (confidence, count, right / count)
    if best is None:
        return Calibration(1.0, 1.0, None, target)
    threshold, accepted, agreement = best
    return Calibration(threshold, 1 - accepted / len(ranked), agreement, target)


def calibrate_per_triple(
    predictions: Sequence[Prediction],
    examples: Sequence[Example],
    agreements: Sequence[bool],
    target: float,
) -> Calibration:
    """The lowest threshold at which both whole answers (confidence ≥ t) agree and kept
    triples (their own confidence ≥ t) are right at least `target` of the time."""
    triples = _scored_triples(predictions, examples)
    answers = sorted(
        ((p.confidence, agreed) for p, agreed in zip(predictions, agreements, strict=True)),
        key=lambda pair: -pair[0],
    )
    triples.sort(key=lambda pair: -pair[0])
    candidates = sorted({c for c, _ in answers} | {c for c, _ in triples}, reverse=True)
    best: tuple[float, int, float] | None = None
    answer_index = triple_index = answers_right = triples_right = 0
    for threshold in candidates:  # descending: accepted sets only grow
        while answer_index < len(answers) and answers[answer_index][0] >= threshold:
            answers_right += answers[answer_index][1]
            answer_index += 1
        while triple_index < len(triples) and triples[triple_index][0] >= threshold:
            triples_right += triples[triple_index][1]
            triple_index += 1
        answers_ok = not answer_index or answers_right / answer_index >= target
        triples_ok = not triple_index or triples_right / triple_index >= target
        if answers_ok and triples_ok:
            agreement = answers_right / answer_index if answer_index else None
            best = (threshold, answer_index, agreement)
    if best is None or not answers:
        return Calibration(1.0, 1.0, None, target)
    threshold, accepted, agreement = best
    return Calibration(threshold, 1 - accepted / len(answers), agreement, target)


def triple_precision_at(
    predictions: Sequence[Prediction], examples: Sequence[Example], threshold: float
) -> dict[str, float | int]:
    """How many predicted triples the cascade would keep at `threshold`, and how many are right."""
    kept = [
        right
        for confidence, right in _scored_triples(predictions, examples)
        if confidence >= threshold
    ]
    return {"kept": len(kept), "precision": sum(kept) / len(kept) if kept else 0.0}


def _scored_triples(
    predictions: Sequence[Prediction], examples: Sequence[Example]
) -> list[tuple[float, bool]]:
    """(confidence, is it in a reference) for every triple of the per-triple students' answers."""
    scored: list[tuple[float, bool]] = []
    for prediction, example in zip(predictions, examples, strict=True):
        if prediction.output is None or prediction.triple_confidences is None:
            continue
        truth = {normalise_triple(t) for reference in example.references for t in reference}
        scored += [
            (confidence, normalise_triple(triple) in truth)
            for triple, confidence in zip(
                prediction.output, prediction.triple_confidences, strict=True
            )
        ]
    return scored


def at_threshold(report: Report, examples: Sequence[Example], threshold: float) -> dict[str, Any]:
    """What serving at `threshold` would do on these examples: the share answered locally in
    full, how often those answers agree, and (per-triple students) the triples kept."""
    answered = [
        agreed
        for prediction, agreed in zip(report.predictions, report.agreements, strict=True)
        if prediction.output is not None and prediction.confidence >= threshold
    ]
    result: dict[str, Any] = {
        "threshold": threshold,
        "answered_share": len(answered) / len(report.predictions) if report.predictions else 0.0,
        "answered_agreement": sum(answered) / len(answered) if answered else None,
    }
    if any(p.triple_confidences is not None for p in report.predictions):
        result["kept_triples"] = triple_precision_at(report.predictions, examples, threshold)
    return result


def evaluate(
    student: StudentBackend,
    direction: str,
    examples: Sequence[Example],
    *,
    target: float,
) -> Report:
    predictions = predict(student, direction, examples)
    agreements = [agrees(direction, p, e) for p, e in zip(predictions, examples, strict=True)]
    if direction == DECOMPOSITION:
        scores = score_decomposition(
            [p.output or [] for p in predictions], [list(e.references[0]) for e in examples]
        )
        headline = scores["exact"]["f1"]
    else:
        scores = score_recomposition(
            [p.output or "" for p in predictions], [list(e.references) for e in examples]
        )
        headline = scores["chrf_pp"] / 100
    per_triple = any(p.triple_confidences is not None for p in predictions)
    if per_triple:
        calibration = calibrate_per_triple(predictions, examples, agreements, target)
    else:
        calibration = calibrate([p.confidence for p in predictions], agreements, target)
    latencies = sorted(p.latency_ms for p in predictions)
    metrics = {
        **scores,
        "headline": headline,
        "agreement": sum(agreements) / len(agreements) if agreements else 0.0,
        "failures": sum(1 for p in predictions if p.error),
        "count": len(examples),
        "data_fingerprint": fingerprint(examples),
        "calibration": {
            "threshold": calibration.threshold,
            "expected_fallback_rate": calibration.expected_fallback_rate,
            "accepted_agreement": calibration.accepted_agreement,
            "target": target,
        },
    }
    if per_triple:
        metrics["calibration"]["kept_triples"] = triple_precision_at(
            predictions, examples, calibration.threshold
        )
    return Report(
        metrics=metrics,
        calibration=calibration,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        agreements=agreements,
        predictions=predictions,
    )


def _percentile(values: Sequence[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
