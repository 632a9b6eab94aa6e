"""Run a student over reference examples, score it, and calibrate its threshold (Django-free).

Agreement (what calibration counts as "right") is deliberately strict and reference-based:
- decomposition: the predicted triple set equals the reference after normalisation;
- recomposition: the text mentions every subject and object of its triples (normalised), a
  faithfulness check that needs no single "correct" wording.
The threshold is the lowest confidence whose accepted answers agree at least `target` of the time.
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
from boundary.triples import Triple, normalise_text, same_triples, to_linear
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
            prediction = Prediction(answer.output, answer.confidence)
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
    return Report(
        metrics=metrics,
        calibration=calibration,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        agreements=agreements,
    )


def _percentile(values: Sequence[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
