"""The inference cascade: local models first; the LLM teacher when they are unsure, missing, broken.

Each request writes exactly one BoundaryCall, whatever happens, so no call (and no training
pair) is ever lost. The stages are the active versions of the direction, cheapest first
(see `ModelVersionQuerySet.serving_order`: encoder, generative student), then the teacher.

Decomposition is cascaded per triple: a stage that scores its triples one by one (the encoder)
contributes those at or above its threshold, and the next stage is asked only when some were
uncertain or the stage thinks a fact is missing (for instance one whose predicate it has never
seen). The next stage's answer then fills in around the kept triples: a triple stating a fact
already kept is dropped. Every served triple records the stage that produced it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from boundary import metrics
from boundary.entities import parse_date
from boundary.fingerprint import (
    call_group_key,
    split_for,
    text_fingerprint,
    triples_fingerprint,
)
from boundary.inserts import insert_call
from boundary.memory import Remembered, recall
from boundary.models import (
    BoundaryCall,
    CallOrigin,
    Direction,
    FallbackReason,
    ModelKind,
    ModelVersion,
    ServedBy,
)
from boundary.serving import serving_versions
from boundary.students import StudentAnswer, StudentBackend
from boundary.teacher import (
    AnthropicTeacher,
    TeacherError,
    TeacherInvalidOutput,
    TeacherResult,
    teacher_from_settings,
)
from boundary.triples import (
    Triple,
    normalise_text,
    normalise_triple,
    same_triples,
    to_linear,
    triples_to_json,
)
from boundary.warming import StillLoading, ready_student

logger = logging.getLogger(__name__)


class Unserved(Exception):
    """Nobody could answer: no usable local answer and the teacher failed. The call is stored."""

    def __init__(self, call: BoundaryCall, cause: TeacherError) -> None:
        super().__init__(str(cause))
        self.call = call
        self.cause = cause


def decompose(
    text: str,
    *,
    client: Any = None,
    teacher: AnthropicTeacher | None = None,
    origin: str = CallOrigin.API,
) -> BoundaryCall:
    """Text → triples. Raises Unserved (after storing the call) when nobody can answer."""
    return _Cascade(
        direction=Direction.DECOMPOSITION,
        stored_input=text,
        input_repr=text,
        fingerprint=text_fingerprint(text),
        ask_student=lambda backend: backend.decompose(text),
        ask_teacher=lambda t: t.decompose(text),
        teacher=teacher or teacher_from_settings(),
        client=client,
        origin=origin,
    ).run()


def recompose(
    triples: Sequence[Triple],
    *,
    client: Any = None,
    teacher: AnthropicTeacher | None = None,
    origin: str = CallOrigin.API,
) -> BoundaryCall:
    """Triples → text. Raises Unserved (after storing the call) when nobody can answer."""
    triples = list(triples)
    return _Cascade(
        direction=Direction.RECOMPOSITION,
        stored_input=triples_to_json(triples),
        input_repr=to_linear(triples),
        fingerprint=triples_fingerprint(triples),
        ask_student=lambda backend: backend.recompose(triples),
        ask_teacher=lambda t: t.recompose(triples),
        teacher=teacher or teacher_from_settings(),
        client=client,
        origin=origin,
    ).run()


@dataclass(frozen=True)
class VersionSays:
    """One active version's own answer to an input, asked outside the cascade."""

    version: ModelVersion
    threshold: float | None  # None: uncalibrated, so it never answers alone
    answer: StudentAnswer | None  # None when it failed; `error` says how
    error: str
    latency_ms: float

    @property
    def sure(self) -> bool:
        """Whether the cascade would let it answer alone (at or above its threshold)."""
        return (
            self.answer is not None
            and self.threshold is not None
            and self.answer.confidence >= self.threshold
        )


def decompose_with_each_version(text: str) -> list[VersionSays]:
    """What every active decomposer says about `text` on its own, cheapest first. Stores nothing."""
    return _ask_each_version(Direction.DECOMPOSITION, lambda backend: backend.decompose(text))


def recompose_with_each_version(triples: Sequence[Triple]) -> list[VersionSays]:
    """What every active recomposer says about `triples` on its own. Stores nothing."""
    triples = list(triples)
    return _ask_each_version(Direction.RECOMPOSITION, lambda backend: backend.recompose(triples))


def _ask_each_version(
    direction: str, ask: Callable[[StudentBackend], StudentAnswer]
) -> list[VersionSays]:
    said = []
    for version in serving_versions(direction):
        started = time.perf_counter()
        answer: StudentAnswer | None = None
        error = ""
        try:
            # Staff asked what each version says: worth waiting for one still loading.
            answer = ask(ready_student(version.student_spec(), wait=True))
            _check_answer(direction, answer)
        except Exception as exc:  # reported beside the others, as the cascade falls through it
            answer, error = None, f"{type(exc).__name__}: {exc}"[:500]
        threshold = _threshold(version)
        said.append(
            VersionSays(
                version=version,
                threshold=None if math.isinf(threshold) else threshold,
                answer=answer,
                error=error,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        )
    return said


TEACHER_STAGE = "teacher"
# A generative decomposer and the encoder before it gave the same answer (training.committee).
COMMITTEE_STAGE = "committee"
# An earlier answer to the same input (boundary.memory).
MEMORY_STAGE = "memory"


@dataclass(frozen=True)
class _Sourced:
    """A served triple and where it came from."""

    triple: Triple
    stage: str  # a ModelKind value, or "teacher"
    version: int | None
    confidence: float | None

    def source(self) -> dict[str, Any]:
        return {"stage": self.stage, "version": self.version, "confidence": self.confidence}


def merge_triples(kept: Sequence[_Sourced], new: Sequence[_Sourced]) -> list[_Sourced]:
    """`kept` plus those of `new` that do not restate a kept fact."""
    merged = list(kept)
    for item in new:
        if not any(same_fact(item.triple, other.triple) for other in merged):
            merged.append(item)
    return merged


def same_fact(a: Triple, b: Triple) -> bool:
    """Equal after normalisation, or the same predicate and one end with the other end written
    differently ("1932-03-15" and "March 15, 1932"; "Aarhus" and "Aarhus, Denmark")."""
    key_a, key_b = normalise_triple(a), normalise_triple(b)
    if key_a == key_b:
        return True
    if key_a[1] != key_b[1]:
        return False
    if key_a[0] == key_b[0]:
        return _related(a.object, b.object)
    return key_a[2] == key_b[2] and _related(a.subject, b.subject)


def _related(a: str, b: str) -> bool:
    x, y = normalise_text(a), normalise_text(b)
    if x and y and (x in y or y in x):
        return True
    date_a, date_b = parse_date(a.strip('"')), parse_date(b.strip('"'))
    return date_a is not None and date_a == date_b


@dataclass
class _Cascade:
    direction: str
    stored_input: Any
    input_repr: str
    fingerprint: str
    ask_student: Callable[[StudentBackend], StudentAnswer]
    ask_teacher: Callable[[AnthropicTeacher], TeacherResult]
    teacher: AnthropicTeacher
    client: Any
    origin: str = CallOrigin.API
    started: float = field(default_factory=time.perf_counter)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    recalled: bool = False  # memory is asked once, before the first slow stage

    def run(self) -> BoundaryCall:
        versions = serving_versions(self.direction)
        fallback_reason = FallbackReason.NO_ACTIVE_MODEL if not versions else ""
        best: tuple[ModelVersion, StudentAnswer] | None = None
        kept: list[_Sourced] = []  # decomposition: sure triples of earlier stages
        answered: dict[int, StudentAnswer] = {}  # each earlier stage's answer, by version

        for version in versions:
            if version.kind != ModelKind.ENCODER and (remembered := self._recall()) is not None:
                return self._record_remembered(remembered)
            stage_started = time.perf_counter()
            try:
                # Wait for a version still loading only where no LLM could answer instead.
                backend = ready_student(version.student_spec(), wait=not self.teacher.configured)
                answer = self.ask_student(backend)
                _check_answer(self.direction, answer)
            except StillLoading:
                self._time_stage(version.kind, version.pk, stage_started, "loading")
                fallback_reason = FallbackReason.MODEL_LOADING
                continue
            except Exception as exc:  # a broken local model must degrade, never fail the request
                self._time_stage(version.kind, version.pk, stage_started, "error")
                logger.exception("student v%s failed on %s", version.pk, self.direction)
                self.diagnostics.setdefault("student_errors", []).append(
                    {"version": version.pk, "error": f"{type(exc).__name__}: {exc}"[:500]}
                )
                fallback_reason = FallbackReason.STUDENT_ERROR
                continue
            if best is None or answer.confidence > best[1].confidence:
                best = (version, answer)
            threshold = _threshold(version)
            sure = answer.confidence >= threshold
            self._time_stage(version.kind, version.pk, stage_started, "sure" if sure else "unsure")
            if sure and not kept:  # alone: no earlier stage's triples to merge with
                return self._record_student(ServedBy.STUDENT, version, answer)
            if answer.triple_confidences is not None and _keeps_triples(version):
                kept = merge_triples(kept, _sure_triples(version, answer, threshold))
            elif sure:
                kept = merge_triples(kept, _sourced(version, answer))
            if sure:
                return self._record_local(version, answer, kept)
            partner = _agreeing_partner(version, answer, answered)
            if partner is not None:
                return self._record_committee(version, answer, partner)
            answered[version.pk] = answer
            self._note_stage(version, answer, threshold)
            fallback_reason = FallbackReason.LOW_CONFIDENCE

        if (remembered := self._recall()) is not None:
            return self._record_remembered(remembered)
        if best is not None:
            # Kept for review: where student and teacher disagree, a reviewer helps most.
            version, answer = best
            self.diagnostics["student_answer"] = {
                "version": version.pk,
                "confidence": answer.confidence,
                "output": _output_json(answer.output),
            }
        teacher_started = time.perf_counter()
        try:
            result = self.ask_teacher(self.teacher)
        except TeacherError as exc:
            self._time_stage(TEACHER_STAGE, None, teacher_started, exc.code)
            _log_teacher_failure(self.direction, exc)
            self.diagnostics["teacher_error"] = str(exc)[:500]
            if best is not None:
                return self._record_student(
                    ServedBy.DEGRADED, *best, fallback_reason=fallback_reason, teacher_error=exc
                )
            call = self._save(
                served_by=ServedBy.UNSERVED,
                fallback_reason=fallback_reason,
                teacher_error=exc.code,
                **_billed_usage(exc),
            )
            raise Unserved(call, exc) from exc
        self._time_stage(TEACHER_STAGE, None, teacher_started, "answered")
        output = _output_json(result.output)
        sources: list[dict[str, Any]] = []
        if self.direction == Direction.DECOMPOSITION:
            assert not isinstance(result.output, str)  # the teacher decomposes into triples
            taught = [_Sourced(t, TEACHER_STAGE, None, None) for t in result.output]
            merged = merge_triples(kept, taught)
            if kept:
                self.diagnostics["teacher_output"] = output  # the training label
            output = triples_to_json([item.triple for item in merged])
            sources = [item.source() for item in merged]
        return self._save(
            served_by=ServedBy.TEACHER,
            output=output,
            triple_sources=sources,
            fallback_reason=fallback_reason,
            **result.usage.call_fields(),
        )

    def _recall(self) -> Remembered | None:
        """An earlier answer to this very input (boundary.memory), asked at most once."""
        if self.recalled:
            return None
        self.recalled = True
        started = time.perf_counter()
        remembered = recall(
            self.direction,
            self.fingerprint,
            client=self.client,
            llm_model=self.teacher.model_for(self.direction),
        )
        self._time_stage(MEMORY_STAGE, None, started, "hit" if remembered else "miss")
        return remembered

    def _record_remembered(self, remembered: Remembered) -> BoundaryCall:
        """Served from memory: the earlier answer whole (the LLM's own, where it had completed
        a student's triples), never merged with this call's unsure local triples."""
        self.diagnostics["memory"] = {"call": remembered.call_id, "source": remembered.source}
        sources: list[dict[str, Any]] = []
        if self.direction == Direction.DECOMPOSITION:
            sources = [_memory_source() for _ in remembered.output]
        return self._save(
            served_by=ServedBy.MEMORY,
            output=remembered.output,
            triple_sources=sources,
            avoided_cost_usd=self._avoided_cost(remembered.output),
        )

    def _record_local(
        self, version: ModelVersion, answer: StudentAnswer, kept: list[_Sourced]
    ) -> BoundaryCall:
        """Served without the LLM: by `version` alone, or by it completing earlier stages."""
        if self.direction != Direction.DECOMPOSITION or all(k.version == version.pk for k in kept):
            return self._record_student(ServedBy.STUDENT, version, answer)
        output = triples_to_json([item.triple for item in kept])
        confidences = [k.confidence for k in kept if k.confidence is not None]
        return self._save(
            served_by=ServedBy.STUDENT,
            output=output,
            triple_sources=[item.source() for item in kept],
            model_version=version,
            confidence=min([answer.confidence, *confidences]),
            avoided_cost_usd=self._avoided_cost(output),
        )

    def _record_committee(
        self, version: ModelVersion, answer: StudentAnswer, partner: int
    ) -> BoundaryCall:
        """Served because `version` gave the same triple set as the earlier stage `partner`,
        and their agreement reached the target on held-out data (training.committee)."""
        assert isinstance(answer.output, list)  # _agreeing_partner compared triple sets
        agreement = version.committee["agreement"]
        self.diagnostics["committee"] = {"versions": [partner, version.pk]}
        output = _output_json(answer.output)
        return self._save(
            served_by=ServedBy.STUDENT,
            output=output,
            model_version=version,
            confidence=agreement,
            triple_sources=[
                _Sourced(triple, COMMITTEE_STAGE, version.pk, agreement).source()
                for triple in answer.output
            ],
            avoided_cost_usd=self._avoided_cost(output),
        )

    def _time_stage(self, stage: str, version: int | None, started: float, outcome: str) -> None:
        """How long each stage took and how it ended, for the playground and threshold tuning."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.diagnostics.setdefault("timings", []).append(
            {"stage": stage, "version": version, "ms": round(elapsed_ms, 3), "outcome": outcome}
        )
        metrics.record_stage(self.direction, stage, version, outcome, elapsed_ms / 1000)

    def _note_stage(self, version: ModelVersion, answer: StudentAnswer, threshold: float) -> None:
        """What each unsure stage said, for the console and for tuning thresholds."""
        if answer.triple_confidences is None or isinstance(answer.output, str):
            return  # only triple outputs carry per-triple confidences
        self.diagnostics.setdefault("stages", []).append(
            {
                "version": version.pk,
                # JSON has no infinity: an uncalibrated version's threshold is stored as null.
                "threshold": None if math.isinf(threshold) else threshold,
                "complete": answer.complete,
                "triples": [
                    {**triple.as_dict(), "confidence": confidence}
                    for triple, confidence in zip(
                        answer.output, answer.triple_confidences, strict=True
                    )
                ],
            }
        )

    def _record_student(
        self,
        served_by: str,
        version: ModelVersion,
        answer: StudentAnswer,
        *,
        fallback_reason: str = "",
        teacher_error: TeacherError | None = None,
    ) -> BoundaryCall:
        output = _output_json(answer.output)
        sources = [item.source() for item in _sourced(version, answer)]
        if teacher_error is None:
            usage: dict[str, Any] = {"avoided_cost_usd": self._avoided_cost(output)}
        else:
            usage = _billed_usage(teacher_error)
        return self._save(
            served_by=served_by,
            output=output,
            model_version=version,
            confidence=answer.confidence,
            triple_sources=sources,
            fallback_reason=fallback_reason,
            teacher_error=teacher_error.code if teacher_error else "",
            **usage,
        )

    def _avoided_cost(self, output: Any) -> Decimal | None:
        output_repr = output if isinstance(output, str) else json.dumps(output)
        return self.teacher.estimate_cost(self.direction, len(self.input_repr), len(output_repr))

    def _save(self, **fields: Any) -> BoundaryCall:
        if self.diagnostics:
            fields["diagnostics"] = self.diagnostics
        label = self.diagnostics.get("teacher_output", fields.get("output"))
        group = call_group_key(self.direction, self.stored_input, label)
        call = insert_call(
            BoundaryCall(
                direction=self.direction,
                input=self.stored_input,
                input_hash=self.fingerprint,
                group_key=group,
                split=split_for(group, settings.VALENCE_EVAL_FRACTION),
                client=self.client if getattr(self.client, "pk", None) else None,
                origin=self.origin,
                latency_ms=(time.perf_counter() - self.started) * 1000,
                **fields,
            )
        )
        metrics.record_call(call)
        return call


_said_offline = False


def _log_teacher_failure(direction: str, exc: TeacherError) -> None:
    """A failing LLM is a fault worth a warning each time; no key at all is how an offline
    install runs (bin/serve without one), so it is said once per process, not per request."""
    global _said_offline
    if exc.code != "no_api_key":
        logger.warning("teacher failed on %s: %s (%s)", direction, exc.code, exc)
    elif not _said_offline:
        _said_offline = True
        logger.info("no LLM key: local answers are served degraded, unanswerable calls get 503")
    else:
        logger.debug("teacher failed on %s: %s", direction, exc.code)


def _agreeing_partner(
    version: ModelVersion, answer: StudentAnswer, answered: dict[int, StudentAnswer]
) -> int | None:
    """The earlier stage whose answer this one repeats, when the two may answer together."""
    partner = version.committee_partner
    if partner is None or partner not in answered or not isinstance(answer.output, list):
        return None
    earlier = answered[partner].output
    if not answer.output or not isinstance(earlier, list):
        return None  # agreeing on nothing says nothing
    return partner if same_triples(answer.output, earlier) else None


def _sourced(version: ModelVersion, answer: StudentAnswer) -> list[_Sourced]:
    if not isinstance(answer.output, list):
        return []
    confidences = answer.triple_confidences or (answer.confidence,) * len(answer.output)
    return [
        _Sourced(triple, version.kind, version.pk, confidence)
        for triple, confidence in zip(answer.output, confidences, strict=True)
    ]


def _keeps_triples(version: ModelVersion) -> bool:
    """Whether its calibration covers single triples of unsure answers (training.evaluation)."""
    return version.calibration.get("per_triple", True) is not False


def _sure_triples(version: ModelVersion, answer: StudentAnswer, threshold: float) -> list[_Sourced]:
    return [item for item in _sourced(version, answer) if (item.confidence or 0) >= threshold]


def _threshold(version: ModelVersion) -> float:
    # An uncalibrated version never answers alone (even forced past the gate, even at
    # confidence 1.0); it can still serve degraded when the LLM is down.
    return (
        version.threshold if version.is_calibrated and version.threshold is not None else math.inf
    )


def _check_answer(direction: str, answer: StudentAnswer) -> None:
    if not (isinstance(answer.confidence, float | int) and 0.0 <= answer.confidence <= 1.0):
        raise ValueError(f"confidence must be within [0, 1], got {answer.confidence!r}")
    if direction == Direction.DECOMPOSITION:
        if not isinstance(answer.output, list) or not all(
            isinstance(t, Triple) for t in answer.output
        ):
            raise TypeError("a decomposition must return a list of Triple")
        per_triple = answer.triple_confidences
        if per_triple is not None and (
            len(per_triple) != len(answer.output) or not all(0.0 <= c <= 1.0 for c in per_triple)
        ):
            raise ValueError("triple_confidences must give one value in [0, 1] per triple")
    elif not (isinstance(answer.output, str) and answer.output.strip()):
        raise TypeError("a recomposition must return non-empty text")


def _billed_usage(error: TeacherError) -> dict[str, Any]:
    """An LLM answer in the wrong shape was still paid for; the call log keeps the bill."""
    if not isinstance(error, TeacherInvalidOutput) or error.usage is None:
        return {}
    return error.usage.call_fields()


def _memory_source() -> dict[str, Any]:
    return {"stage": MEMORY_STAGE, "version": None, "confidence": None}


def _output_json(output: list[Triple] | str) -> Any:
    return output if isinstance(output, str) else triples_to_json(output)
