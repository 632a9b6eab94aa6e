"""Student against teacher, for the review console: who said what about one call, and where.

A stored call can hold both answers to one question:

- a call the LLM served after the local models were unsure: each unsure stage's triples
  (`diagnostics["stages"]`, per-triple confidences) and the most confident student's answer
  (`diagnostics["student_answer"]`), against the LLM's own answer
  (`diagnostics["teacher_output"]` when the served answer also kept students' sure triples,
  else the served output);
- the live audit's copy of the LLM's answer (`diagnostics["audit_of"]`): the audited local
  answer, kept in `diagnostics["student_answer"]` when the two disagreed, against this call;
- a call a local model served alone and the live audit re-asked: the served answer against the
  LLM's triples on its `LiveAudit` row.

Triples are matched as the cascade merges them and the round trip counts them
(`boundary.cascade.same_fact`): a pair stating one fact in other words ("1932-03-15" and
"March 15, 1932") is the same fact, shown as worded differently, since the live audit of a
decomposition (equality after `normalise_triple`) would count it as a disagreement.

A recomposition gets the round trip: its input triples beside what decomposing its text
recovers (the LLM in the live audit when it audited the call, else the cheapest active local
decomposer, run now as evaluation does, without storing a call).
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from boundary.cascade import same_fact
from boundary.models import BoundaryCall, Direction, ModelVersion, ServedBy
from boundary.serving import serving_versions
from boundary.triples import Triple, normalise_triple
from boundary.warming import ready_student
from training.evaluation import RoundTrip, round_trip
from training.models import LiveAudit

logger = logging.getLogger(__name__)

TEACHER = "the LLM"


@dataclass(frozen=True)
class Pair:
    """One row of a side-by-side diff: a left triple, the right triple stating the same fact,
    or either alone. Left is the student (or the round trip's input), right the teacher (or
    what the text gave back)."""

    left: Triple | None
    right: Triple | None
    left_confidence: float | None = None

    @property
    def matched(self) -> bool:
        return self.left is not None and self.right is not None

    @property
    def reworded(self) -> bool:
        """The same fact, but not equal after normalisation (the audit would count it apart)."""
        return (
            self.left is not None
            and self.right is not None
            and normalise_triple(self.left) != normalise_triple(self.right)
        )


def align(
    left: Sequence[Triple],
    right: Sequence[Triple],
    left_confidences: Sequence[float | None] | None = None,
) -> list[Pair]:
    """Rows pairing each triple with one stating the same fact on the other side.

    Left order first, then the right triples nobody paired. A triple is paired exactly when
    some triple on the other side states its fact (as `round_trip` counts it), so a fact
    stated twice on one side is paired twice rather than shown as missing.
    """
    confidences = list(left_confidences or [])
    used: set[int] = set()
    rows: list[Pair] = []
    for i, triple in enumerate(left):
        partners = [j for j, other in enumerate(right) if same_fact(triple, other)]
        j = next((p for p in partners if p not in used), partners[0] if partners else None)
        if j is not None:
            used.add(j)
        rows.append(
            Pair(
                triple,
                right[j] if j is not None else None,
                confidences[i] if i < len(confidences) else None,
            )
        )
    for j, other in enumerate(right):
        if j in used:
            continue
        partner = next((t for t in left if same_fact(t, other)), None)
        rows.append(Pair(partner, other))
    return rows


@dataclass(frozen=True)
class Side:
    """Whose answer one side is, and where the console found it."""

    who: str  # "v3 (encoder)" or "the LLM"
    source: str  # in words: which stored record the answer comes from
    confidence: float | None = None


@dataclass(frozen=True)
class TripleComparison:
    """A student's triples against the teacher's, fact by fact."""

    kind: ClassVar[str] = "triples"
    student: Side
    teacher: Side
    pairs: list[Pair]

    def count(self, state: str) -> int:
        return sum(_state(pair) == state for pair in self.pairs)

    @property
    def counts(self) -> dict[str, int]:
        return {state: self.count(state) for state in STATES}

    @property
    def agrees(self) -> bool:
        return all(_state(pair) == "same" for pair in self.pairs)


STATES = ("same", "reworded", "only_student", "only_teacher")


def _state(pair: Pair) -> str:
    if pair.matched:
        return "reworded" if pair.reworded else "same"
    return "only_student" if pair.left is not None else "only_teacher"


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool  # only this side has these words


@dataclass(frozen=True)
class TextComparison:
    """A student's text against the teacher's, word by word."""

    kind: ClassVar[str] = "text"
    student: Side
    teacher: Side
    student_segments: list[Segment]
    teacher_segments: list[Segment]

    @property
    def agrees(self) -> bool:
        return not any(s.changed for s in [*self.student_segments, *self.teacher_segments])


Comparison = TripleComparison | TextComparison


def word_diff(student: str, teacher: str) -> tuple[list[Segment], list[Segment]]:
    """Each text cut into runs of words, each run marked when the other text lacks it."""
    a, b = student.split(), teacher.split()
    left: list[Segment] = []
    right: list[Segment] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append(Segment(" ".join(a[i1:i2]), op != "equal"))
        if j2 > j1:
            right.append(Segment(" ".join(b[j1:j2]), op != "equal"))
    return left, right


@dataclass(frozen=True)
class RoundTripView:
    """A recomposition's input triples beside what decomposing its text recovers."""

    expected: list[Triple]
    recovered_by: str = ""  # who decomposed the text, in words; "" when nobody could
    pairs: list[Pair] = field(default_factory=list)
    trip: RoundTrip | None = None
    unavailable: str = ""  # why there is no round trip


def comparisons(call: BoundaryCall) -> list[Comparison]:
    """Every student answer to this call's question stored beside a teacher answer to it."""
    if call.output is None:
        return []
    if call.served_by == ServedBy.TEACHER:
        return _student_said_otherwise(call)
    if call.served_by == ServedBy.STUDENT:
        return _audited(call)
    return []  # degraded: the LLM never answered; imported: no student asked


def round_trip_view(call: BoundaryCall) -> RoundTripView | None:
    """The round trip of a recomposition's text, or of the text an audited one wrote."""
    if call.direction == Direction.RECOMPOSITION:
        if not isinstance(call.output, str):
            return None
        expected = _triples(call.input)
        audit = _done_audit(call)
        if audit is not None:
            teacher_call = f", call #{audit.teacher_call_id}" if audit.teacher_call_id else ""
            return _view(
                expected,
                _triples(audit.teacher_output),
                f"{TEACHER}, decomposing this text in the live audit{teacher_call}",
            )
        return _local_round_trip(expected, call.output)
    audited_id = (call.diagnostics or {}).get("audit_of")
    if audited_id is None:
        return None
    audited = BoundaryCall.objects.filter(pk=audited_id, direction=Direction.RECOMPOSITION).first()
    if audited is None:
        return None  # a decomposition audit (compared above), or the audited call is gone
    return _view(
        _triples(audited.input),
        _triples(call.output),
        f"{TEACHER}, in the live audit of call #{audited.pk} (this call's answer)",
    )


def _student_said_otherwise(call: BoundaryCall) -> list[Comparison]:
    diagnostics: Mapping[str, Any] = call.diagnostics or {}
    audited_id = diagnostics.get("audit_of")
    if audited_id is not None:
        teacher = Side(TEACHER, f"asked again by the live audit of call #{audited_id}")
    elif "teacher_output" in diagnostics:
        teacher = Side(
            TEACHER,
            "its own answer (the served output also kept the students' sure triples)",
        )
    else:
        teacher = Side(TEACHER, "the served answer")
    if call.direction == Direction.RECOMPOSITION:
        return _text_comparisons(diagnostics.get("student_answer"), str(call.output), teacher)

    teacher_triples = _triples(diagnostics.get("teacher_output", call.output))
    stages = [s for s in diagnostics.get("stages") or [] if isinstance(s, dict)]
    best = diagnostics.get("student_answer")
    best = best if isinstance(best, dict) else None
    staged = {stage.get("version") for stage in stages}
    kinds = _kinds([stage.get("version") for stage in stages] + [(best or {}).get("version")])
    result: list[Comparison] = []
    for stage in stages:
        items = [t for t in stage.get("triples") or [] if isinstance(t, dict)]
        result.append(
            TripleComparison(
                student=Side(
                    _who(stage.get("version"), kinds),
                    f"unsure ({_threshold(stage.get('threshold'))}), confidence per triple; "
                    "noted by the cascade",
                ),
                teacher=teacher,
                pairs=align(
                    _triples(items),
                    teacher_triples,
                    [t.get("confidence") for t in items if _triple(t) is not None],
                ),
            )
        )
    if best is not None and best.get("version") not in staged:
        if audited_id is not None:
            source = f"its served answer to call #{audited_id}"
        else:
            source = "below its threshold; the most confident student, noted by the cascade"
        result.append(
            TripleComparison(
                student=Side(_who(best.get("version"), kinds), source, best.get("confidence")),
                teacher=teacher,
                pairs=align(_triples(best.get("output")), teacher_triples),
            )
        )
    return result


def _text_comparisons(best: Any, teacher_text: str, teacher: Side) -> list[Comparison]:
    if not isinstance(best, dict) or not isinstance(best.get("output"), str):
        return []
    student_segments, teacher_segments = word_diff(best["output"], teacher_text)
    student = Side(
        _who(best.get("version"), _kinds([best.get("version")])),
        "below its threshold; noted by the cascade",
        best.get("confidence"),
    )
    return [TextComparison(student, teacher, student_segments, teacher_segments)]


def _audited(call: BoundaryCall) -> list[Comparison]:
    """A local answer the live audit re-asked: the served triples against the LLM's."""
    if call.direction != Direction.DECOMPOSITION:
        return []  # the LLM decomposed the text: that is the round trip, not a comparison
    audit = _done_audit(call)
    if audit is None:
        return []
    sources = call.triple_sources or []
    served: list[Triple] = []
    confidences: list[float | None] = []
    for i, item in enumerate(call.output or []):
        if (triple := _triple(item)) is not None:
            source = sources[i] if i < len(sources) else None
            served.append(triple)
            confidences.append(source.get("confidence") if isinstance(source, dict) else None)
    version = call.model_version
    who = f"v{version.pk} ({version.kind})" if version else "a local model"
    teacher_call = f", call #{audit.teacher_call_id}" if audit.teacher_call_id else ""
    return [
        TripleComparison(
            student=Side(who, "the served answer", call.confidence),
            teacher=Side(TEACHER, f"asked again by the live audit{teacher_call}"),
            pairs=align(served, _triples(audit.teacher_output), confidences),
        )
    ]


def _local_round_trip(expected: list[Triple], text: str) -> RoundTripView:
    """Decompose `text` with the cheapest active decomposer, as evaluation's round trip does
    (`training.pipeline.round_trip_decomposer`). Nothing is stored."""
    versions = serving_versions(Direction.DECOMPOSITION)
    if not versions:
        return RoundTripView(
            expected,
            unavailable="No decomposer is available: the live audit has not decomposed this "
            "text and no local decomposer is active.",
        )
    version = versions[0]
    try:
        output = ready_student(version.student_spec(), wait=True).decompose(text).output
        if isinstance(output, str):
            raise TypeError("it answered a decomposition with text")
    except Exception as exc:  # a broken decomposer must not break the console
        logger.exception("v%s could not round-trip a text for review", version.pk)
        return RoundTripView(
            expected,
            unavailable=f"The active decomposer v{version.pk} ({version.kind}) could not "
            f"decompose the text: {type(exc).__name__}: {exc}"[:500],
        )
    return _view(
        expected,
        list(output),
        f"v{version.pk} ({version.kind}), the active local decomposer, run now (not stored)",
    )


def _view(expected: list[Triple], recovered: list[Triple], recovered_by: str) -> RoundTripView:
    return RoundTripView(
        expected=expected,
        recovered_by=recovered_by,
        pairs=align(expected, recovered),
        trip=round_trip(expected, recovered),
    )


def _done_audit(call: BoundaryCall) -> LiveAudit | None:
    return LiveAudit.objects.filter(call=call, status=LiveAudit.Status.DONE).first()


def _kinds(version_ids: Iterable[Any]) -> dict[int, str]:
    ids = {pk for pk in version_ids if isinstance(pk, int)}
    if not ids:
        return {}
    return dict(ModelVersion.objects.filter(pk__in=ids).values_list("pk", "kind"))


def _who(version_id: Any, kinds: Mapping[int, str]) -> str:
    if not isinstance(version_id, int):
        return "a local model"
    kind = kinds.get(version_id)
    return f"v{version_id} ({kind})" if kind else f"v{version_id}"


def _triples(data: Any) -> list[Triple]:
    """Stored triples, validated when they were stored; anything malformed is left out, so an
    odd diagnostics record never breaks the console."""
    if not isinstance(data, list):
        return []
    return [triple for item in data if (triple := _triple(item)) is not None]


def _triple(item: Any) -> Triple | None:
    if not isinstance(item, dict):
        return None
    subject, predicate, obj = (item.get(name) for name in ("subject", "predicate", "object"))
    if not (isinstance(subject, str) and isinstance(predicate, str) and isinstance(obj, str)):
        return None
    return Triple(subject, predicate, obj)


def _threshold(value: Any) -> str:
    """An unsure stage's threshold in words (an uncalibrated version has none to reach)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"threshold {value:.2f}"
    return "uncalibrated"
