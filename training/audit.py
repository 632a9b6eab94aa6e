"""The live quality audit: a small, stable sample of local answers, re-asked to the LLM later.

Calibration promises, at promotion, how often a version's confident answers agree with the
reference (measured on held-out eval data). Traffic drifts and nobody re-checks, so a
background pass (`training.tasks.audit_live_calls`, a django-q2 schedule created by migration
`training.0002`) takes `VALENCE_AUDIT_RATE` of the calls an active version served alone and asks
the teacher the same question:

- decomposition: the teacher decomposes the same text; the audit agrees when both triple sets
  are the same after normalisation (what calibration counts), and records the share of local
  triples the teacher also stated (`triple_precision`);
- recomposition: the teacher decomposes the local text; the audit agrees when the round trip
  recovers every input triple and no other fact (`training.evaluation.round_trip`).

Only `served_by="student"` answers are sampled: a degraded answer was below the threshold, so the
promise never covered it. Sampling is a hash of the call id, so it needs no state on the request
path, is reproducible, and takes exactly the calls `is_sampled` names. The pass resumes after the
highest call id already audited and looks back at most a day (`LOOKBACK`), so switching the
audit on never replays months of traffic.

Money: before each LLM request the pass adds up what the audit paid today (UTC) and skips the
sample (recorded, with the reason) when that sum plus the request's expected price (the larger of
the teacher's estimate and today's dearest audit) would pass `VALENCE_AUDIT_DAILY_USD`.

Each teacher answer is stored as a decomposition `BoundaryCall` served by the teacher (its own
group and split, `diagnostics["audit_of"]`), so it is training data like any other LLM answer.

A version is demoted (`boundary.registry.do_demote`, audit-logged with the evidence) once it has
`VALENCE_AUDIT_MIN_SAMPLES` done audits and the upper bound of the 95 % Wilson interval of its
live agreement is below its calibration target: the promise is then clearly broken, not just
unlucky. Without an API key, or at rate 0, the audit is off and says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from boundary.fingerprint import call_group_key, split_for, text_fingerprint
from boundary.models import BoundaryCall, Direction, ModelVersion, ServedBy, VersionEvent
from boundary.registry import RegistryError, do_demote
from boundary.teacher import (
    AnthropicTeacher,
    TeacherError,
    TeacherInvalidOutput,
    TeacherResult,
    teacher_from_settings,
)
from boundary.triples import (
    STORED_LIMITS,
    Triple,
    TripleValidationError,
    normalise_triple,
    parse_triples,
    same_triples,
    triples_to_json,
)
from training.evaluation import round_trip, wilson_interval
from training.models import LiveAudit

logger = logging.getLogger(__name__)

# Sampled calls handled per pass (once a minute): far above what a daily cap of dollars buys.
BATCH = 100
# Calls older than this are never sampled: the audit measures what a version does now.
LOOKBACK = timedelta(days=1)
_SALT = b"live-audit\x00"


@dataclass(frozen=True)
class AuditState:
    """Whether the audit runs, and if not, why (shown on the models page and dashboards)."""

    rate: float
    daily_usd: Decimal
    min_samples: int
    off_reason: str = ""

    @property
    def enabled(self) -> bool:
        return not self.off_reason


def audit_state(teacher: AnthropicTeacher | None = None) -> AuditState:
    """On or off, read from settings on every pass: a new key or rate needs no restart."""
    teacher = teacher or teacher_from_settings()
    rate = float(settings.VALENCE_AUDIT_RATE)
    cap = Decimal(str(settings.VALENCE_AUDIT_DAILY_USD))
    if not teacher.configured:
        reason = "no API key"
    elif rate <= 0:
        reason = "VALENCE_AUDIT_RATE is 0"
    elif cap <= 0:
        reason = "VALENCE_AUDIT_DAILY_USD is 0"
    else:
        reason = ""
    return AuditState(
        rate=rate,
        daily_usd=cap,
        min_samples=settings.VALENCE_AUDIT_MIN_SAMPLES,
        off_reason=reason,
    )


def is_sampled(call_id: int, rate: float) -> bool:
    """Whether the audit takes this call: a stable hash of its id, uniform in [0, 1), < rate."""
    digest = hashlib.sha256(_SALT + str(call_id).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def sampled_calls(rate: float, *, limit: int = BATCH) -> list[BoundaryCall]:
    """The next calls to audit, oldest first: active versions' own answers after the last audit."""
    watermark = LiveAudit.objects.aggregate(mark=Max("call_id"))["mark"] or 0
    candidates = (
        BoundaryCall.objects.filter(
            pk__gt=watermark,
            created_at__gte=timezone.now() - LOOKBACK,
            served_by=ServedBy.STUDENT,
            model_version__is_active=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    picked: list[int] = []
    for pk in candidates.iterator(chunk_size=5000):
        if is_sampled(pk, rate):
            picked.append(pk)
            if len(picked) >= limit:
                break
    return list(BoundaryCall.objects.filter(pk__in=picked).order_by("pk"))


@dataclass
class AuditPass:
    """What one pass did; its text is the django-q2 task's result."""

    off_reason: str = ""
    done: int = 0
    agreed: int = 0
    failed: int = 0
    skipped: int = 0
    stopped: str = ""
    demoted: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        if self.off_reason:
            return f"live audit off: {self.off_reason}"
        text = (
            f"audited {self.done} ({self.agreed} agreed), {self.failed} failed, "
            f"{self.skipped} skipped"
        )
        if self.stopped:
            text += f"; stopped early: {self.stopped}"
        if self.demoted:
            text += "; demoted " + ", ".join(f"v{pk}" for pk in self.demoted)
        return text


def do_audit_pass(*, teacher: AnthropicTeacher | None = None, limit: int = BATCH) -> AuditPass:
    """Audit the next sampled calls, then demote any active version whose promise broke."""
    teacher = teacher or teacher_from_settings()
    state = audit_state(teacher)
    if not state.enabled:
        return AuditPass(off_reason=state.off_reason)
    report = AuditPass()
    for call in sampled_calls(state.rate, limit=limit):
        try:
            audit = do_audit_call(call, teacher=teacher, daily_usd=state.daily_usd)
        except TeacherError as exc:  # the LLM is down or rate-limiting: try again next pass
            report.failed += 1
            report.stopped = f"{exc.code}: {exc}"
            break
        if audit is None:
            continue  # another worker claimed it
        if audit.status == LiveAudit.Status.DONE:
            report.done += 1
            report.agreed += bool(audit.agreed)
        elif audit.status == LiveAudit.Status.SKIPPED:
            report.skipped += 1
        else:
            report.failed += 1
    report.demoted = [event.version_id for event in do_demote_failing_versions()]
    return report


def do_audit_call(
    call: BoundaryCall, *, teacher: AnthropicTeacher, daily_usd: Decimal
) -> LiveAudit | None:
    """Re-ask the teacher about one call and record the agreement (None: already claimed, or
    no version answered it, which the NOT NULL version would refuse anyway).

    A teacher that is unavailable or rate-limited is recorded as a failed audit and re-raised,
    so the pass stops instead of spending its batch on errors.
    """
    version_id = call.model_version_id
    if version_id is None:
        return None
    try:
        with transaction.atomic():  # the one-to-one on call is the claim
            audit = LiveAudit.objects.create(
                call=call, version_id=version_id, direction=call.direction
            )
    except IntegrityError:
        return None
    try:
        question, reference = _question(call)
    except (TripleValidationError, ValueError) as exc:
        return _finish(audit, status=LiveAudit.Status.FAILED, error=str(exc)[:500])
    skip = _over_budget(teacher, question, reference, daily_usd)
    if skip:
        return _finish(audit, status=LiveAudit.Status.SKIPPED, error=skip)
    try:
        result = teacher.decompose(question)
    except TeacherInvalidOutput as exc:  # billed all the same
        return _finish(
            audit,
            status=LiveAudit.Status.FAILED,
            error=f"{exc.code}: {exc}"[:500],
            cost_usd=exc.usage.cost_usd if exc.usage else None,
            audited_at=timezone.now(),
        )
    except TeacherError as exc:
        _finish(audit, status=LiveAudit.Status.FAILED, error=f"{exc.code}: {exc}"[:500])
        raise
    return _record_answer(audit, call, question, reference, result)


def _question(call: BoundaryCall) -> tuple[str, list[Triple]]:
    """The text the teacher decomposes, and the triples its answer is compared with.

    Decomposition: the call's text, against the local triples. Recomposition: the local text,
    against the call's input triples (the round trip).
    """
    if call.direction == Direction.DECOMPOSITION:
        text, triples = call.input, call.output
    else:
        text, triples = call.output, call.input
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no text to decompose")
    return text, _stored_triples(triples)


def _over_budget(
    teacher: AnthropicTeacher, question: str, reference: Sequence[Triple], daily_usd: Decimal
) -> str:
    """Why this request would break the daily cap ("" when it fits)."""
    answer_chars = len(json.dumps(triples_to_json(reference)))
    estimate = teacher.estimate_cost(Direction.DECOMPOSITION, len(question), answer_chars)
    if estimate is None:
        return "the teacher model has no price, so the daily cap cannot be kept"
    spent, dearest = LiveAudit.objects.spend_since(start_of_day())
    if spent + max(estimate, dearest) > daily_usd:
        return f"daily audit cap of ${daily_usd} reached (${spent:.4f} spent today)"
    return ""


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight of today in TIME_ZONE (UTC): where the daily cap starts again."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _record_answer(
    audit: LiveAudit,
    call: BoundaryCall,
    question: str,
    reference: list[Triple],
    result: TeacherResult,
) -> LiveAudit:
    if isinstance(result.output, str):  # decompose answers triples; a text is a teacher bug
        raise TypeError("the teacher answered a decomposition with text")
    teacher_triples = list(result.output)
    teacher_json = triples_to_json(teacher_triples)
    if call.direction == Direction.DECOMPOSITION:
        agreed = same_triples(reference, teacher_triples)
        precision = _precision(reference, teacher_triples)
        details: dict[str, Any] = {}
    else:
        trip = round_trip(reference, teacher_triples)
        agreed, precision = trip.agrees, None
        details = {
            "expected": trip.expected,
            "recovered": trip.recovered,
            "recalled": trip.recalled,
            "supported": trip.supported,
        }
    diagnostics: dict[str, Any] = {"audit_of": call.pk}
    if not agreed and call.direction == Direction.DECOMPOSITION:
        # A student/teacher disagreement goes to the top of the review queue.
        diagnostics["student_answer"] = {
            "version": call.model_version_id,
            "confidence": call.confidence,
            "output": call.output,
        }
    elif not agreed:
        diagnostics["round_trip"] = details
    group = call_group_key(Direction.DECOMPOSITION, question, teacher_json)
    with transaction.atomic():
        stored = BoundaryCall.objects.create(
            direction=Direction.DECOMPOSITION,
            input=question,
            output=teacher_json,
            input_hash=text_fingerprint(question),
            group_key=group,
            split=split_for(group, settings.VALENCE_EVAL_FRACTION),
            served_by=ServedBy.TEACHER,
            latency_ms=result.usage.latency_ms,
            **result.usage.call_fields(),
            diagnostics=diagnostics,
        )
        return _finish(
            audit,
            status=LiveAudit.Status.DONE,
            agreed=agreed,
            triple_precision=precision,
            teacher_output=teacher_json,
            details=details,
            teacher_call=stored,
            cost_usd=result.usage.cost_usd,
            audited_at=timezone.now(),
        )


def _finish(audit: LiveAudit, **fields: Any) -> LiveAudit:
    for name, value in fields.items():
        setattr(audit, name, value)
    audit.save(update_fields=list(fields))
    return audit


def _stored_triples(data: object) -> list[Triple]:
    return parse_triples(data, STORED_LIMITS) if data else []


def _precision(local: Sequence[Triple], teacher: Sequence[Triple]) -> float | None:
    """Share of the local triples that the teacher also stated (after normalisation)."""
    mine = {normalise_triple(t) for t in local}
    if not mine:
        return None
    return len(mine & {normalise_triple(t) for t in teacher}) / len(mine)


@dataclass(frozen=True)
class LiveAgreement:
    """A version's audits so far, beside what its calibration promised."""

    version_id: int
    audits: int  # done: the LLM answered
    agreed: int
    failed: int
    skipped: int
    pending: int
    target: float
    min_samples: int
    promise: float | None  # held-out agreement at calibration
    promise_interval: tuple[float, float] | None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.audits if self.audits else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.agreed, self.audits)

    @property
    def below_target(self) -> bool:
        """The whole 95 % interval lies below the target: the promise is broken, not unlucky."""
        return self.interval is not None and self.interval[1] < self.target

    @property
    def should_demote(self) -> bool:
        return self.audits >= self.min_samples and self.below_target

    def evidence(self) -> dict[str, Any]:
        return {
            "audits": self.audits,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "interval": list(self.interval) if self.interval else None,
            "target": self.target,
            "min_samples": self.min_samples,
            "failed": self.failed,
            "skipped": self.skipped,
            "promise": {
                "agreement": self.promise,
                "interval": list(self.promise_interval) if self.promise_interval else None,
            },
        }


def live_agreement(versions: Iterable[ModelVersion]) -> dict[int, LiveAgreement]:
    """Each version's live agreement, in one aggregate query (versions without audits too)."""
    versions = list(versions)
    counts = LiveAudit.objects.per_version([v.pk for v in versions])
    empty = {"audits": 0, "agreed": 0, "failed": 0, "skipped": 0, "pending": 0}
    result = {}
    for version in versions:
        calibration = version.calibration
        held_out = calibration.get("held_out") or {}
        interval = held_out.get("agreement_interval")
        result[version.pk] = LiveAgreement(
            version_id=version.pk,
            **counts.get(version.pk, empty),
            target=float(calibration.get("target") or settings.VALENCE_CALIBRATION_TARGET),
            min_samples=settings.VALENCE_AUDIT_MIN_SAMPLES,
            promise=held_out.get("agreement"),
            promise_interval=tuple(interval) if interval else None,
        )
    return result


def do_demote_failing_versions() -> list[VersionEvent]:
    """Demote every active version whose live agreement is clearly below its target."""
    events = []
    active = list(ModelVersion.objects.active())
    live = live_agreement(active)
    for version in active:
        verdict = live[version.pk]
        if not verdict.should_demote:
            continue
        reason = _demotion_reason(verdict)
        try:
            events.append(do_demote(version, reason=reason, evidence=verdict.evidence()))
        except RegistryError:  # demoted or rolled back meanwhile
            continue
        logger.warning("demoted v%s: %s", version.pk, reason)
    return events


def _demotion_reason(live: LiveAgreement) -> str:
    low, high = live.interval or (0.0, 0.0)
    return (
        f"live audit: {live.agreed}/{live.audits} local answers agreed with the LLM "
        f"({live.agreement:.1%}, 95 % interval {low:.1%}–{high:.1%}), "
        f"clearly below the {live.target:.0%} target"
    )


@dataclass(frozen=True)
class AuditOverview:
    """What the models page and the dashboards show about the audit."""

    state: AuditState
    spent_today: Decimal
    rows: list[tuple[ModelVersion, LiveAgreement]]


def audit_overview(active: Sequence[ModelVersion]) -> AuditOverview:
    """Two queries whatever the number of versions: the counts and today's spend."""
    live = live_agreement(active)
    spent, _ = LiveAudit.objects.spend_since(start_of_day())
    return AuditOverview(
        state=audit_state(),
        spent_today=spent,
        rows=[(version, live[version.pk]) for version in active],
    )
