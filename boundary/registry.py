"""The model registry's state changes: promote (gated), force, roll back. Each one is audited.

"Active" is the alias that serves traffic. A promotion moves it to a candidate and retires the
version it replaces; a rollback moves it back to the version the last promotion replaced (or to
no local model at all, when the first version is rolled back). Web processes notice on their
next request: the cascade reads the active ids per request and caches models by id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from boundary.models import ModelVersion, VersionEvent, VersionStatus


class RegistryError(Exception):
    """The registry cannot do what was asked (nothing to roll back, wrong status...)."""


class PromotionRefused(RegistryError):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("; ".join(verdict.reasons))
        self.verdict = verdict


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    candidate: float | None = None
    baseline: float | None = None
    baseline_version: int | None = None
    floor: float | None = None
    # The reasons that concern only when it may answer alone (a subset of `reasons`): a version
    # refused for these alone can still serve degraded answers when no LLM is reachable.
    calibration_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def refused_only_for_calibration(self) -> bool:
        return not self.passed and set(self.reasons) == set(self.calibration_reasons)


def gate_verdict(candidate: ModelVersion) -> Verdict:
    """Would promoting `candidate` make things better? Compared on the same evaluation data."""
    reasons: list[str] = []
    score = candidate.headline_metric
    floor = settings.VALENCE_GATE_FLOORS.get(candidate.direction)
    active = (
        ModelVersion.objects.active()
        .filter(direction=candidate.direction, kind=candidate.kind)
        .exclude(pk=candidate.pk)
        .first()
    )
    baseline = (candidate.metrics or {}).get("baseline") or {}
    if candidate.status != VersionStatus.READY:
        reasons.append(f"v{candidate.pk} is {candidate.status}, not ready")
    if candidate.is_active:
        reasons.append(f"v{candidate.pk} is already active")
    if score is None:
        reasons.append(f"v{candidate.pk} has no evaluation")
    elif floor is not None and score < floor:
        reasons.append(f"headline {score:.3f} is below the floor {floor:.3f}")
    if not candidate.is_calibrated:
        calibration_reasons = _uncalibrated(candidate)
    else:
        calibration_reasons = _undelivered_promise(candidate)
    reasons += calibration_reasons
    baseline_score = None
    if active is not None:
        if baseline.get("version") != active.pk:
            reasons.append(
                f"v{candidate.pk} was not evaluated against the active v{active.pk} "
                "on the same data"
            )
        else:
            baseline_score = baseline.get("headline")
            if score is not None and baseline_score is not None and score <= baseline_score:
                reasons.append(
                    f"headline {score:.3f} does not beat the active v{active.pk}'s "
                    f"{baseline_score:.3f}"
                )
    return Verdict(
        passed=not reasons,
        reasons=reasons,
        candidate=score,
        baseline=baseline_score,
        baseline_version=active.pk if active else None,
        floor=floor,
        calibration_reasons=calibration_reasons,
    )


def _uncalibrated(candidate: ModelVersion) -> list[str]:
    """An uncalibrated version may still answer where it agrees with an active encoder, if
    held-out data showed that agreement reaches the target (training.committee)."""
    partner = candidate.committee_partner
    if partner is None:
        return [
            f"v{candidate.pk} is uncalibrated: no confidence threshold reached the target "
            "agreement, so it could never answer alone"
        ]
    if not ModelVersion.objects.active().filter(pk=partner).exists():
        return [
            f"v{candidate.pk} is uncalibrated, and v{partner}, with which its agreement was "
            "measured, is no longer active"
        ]
    return []


def _undelivered_promise(candidate: ModelVersion) -> list[str]:
    """The threshold was chosen on one part of the eval split; on the other part its accepted
    answers must not clearly miss the target (the interval's upper bound below it), and there
    must be some: a threshold that answers on the examples it was chosen on but on none of those
    it was not (cross-fitted halves) has no evidence but a streak it was picked for. The Food
    flywheel promoted such a version (chosen on 385, 0 answered held out) and it served a
    quarter of the traffic at well under its target."""
    held_out = candidate.calibration.get("held_out") or {}
    choice = candidate.calibration.get("choice") or {}
    if held_out and not held_out.get("answered") and choice.get("answered"):
        return [
            f"its threshold answered none of the {held_out.get('count', 0)} eval examples it "
            "was not chosen on (cross-fitted halves): no held-out evidence that it delivers "
            "the target"
        ]
    target = candidate.calibration.get("target")
    reasons = []
    if misses_target(held_out, target):
        low, high = held_out["agreement_interval"]
        reasons.append(
            f"on held-out eval data its threshold delivered {held_out['agreement']:.1%} "
            f"agreement (95 % interval {low:.1%}–{high:.1%}), below the {target:.0%} target"
        )
    completed = held_out.get("completed") or {}
    if candidate.calibration.get("per_triple") is not False and misses_target(completed, target):
        low, high = completed["agreement_interval"]
        reasons.append(
            f"the unsure answers whose sure triples it keeps were right as a whole only "
            f"{completed['agreement']:.1%} of the time on held-out eval data "
            f"(95 % interval {low:.1%}–{high:.1%}), below the {target:.0%} target"
        )
    return reasons


def misses_target(delivered: dict[str, Any], target: float | None) -> bool:
    """The upper bound of what was delivered misses the target (the gate's test of a promise)."""
    interval = delivered.get("agreement_interval")
    return bool(interval and target is not None and interval[1] < target)


def do_promote(
    version: ModelVersion, *, acting_user: Any = None, reason: str = "", force: bool = False
) -> VersionEvent:
    """Make `version` serve. Refused (and logged) unless the gate passes or staff force it."""
    user = acting_user if getattr(acting_user, "pk", None) else None
    with transaction.atomic():
        _lock(version.direction, version.kind)
        version.refresh_from_db()
        verdict = gate_verdict(version)
        if verdict.passed or force:
            return _promote(version, verdict, user=user, reason=reason, force=force)
    # Logged outside the transaction above: a refusal is a fact worth keeping.
    VersionEvent.objects.create(
        action=VersionEvent.Action.REFUSED,
        version=version,
        actor=user,
        reason=reason,
        verdict=verdict.as_dict(),
    )
    raise PromotionRefused(verdict)


def _promote(
    version: ModelVersion, verdict: Verdict, *, user: Any, reason: str, force: bool
) -> VersionEvent:
    forced = force and not verdict.passed
    if forced and not reason.strip():
        raise RegistryError("forcing a promotion past the gate needs a reason")
    if version.status not in (VersionStatus.READY, VersionStatus.RETIRED) or version.is_active:
        raise RegistryError(f"v{version.pk} is {version.status} and cannot serve")
    previous = _retire_active(version.direction, version.kind)
    version.status = VersionStatus.READY
    version.is_active = True
    version.promoted_at = timezone.now()
    version.promoted_by = user
    version.save(update_fields=["status", "is_active", "promoted_at", "promoted_by", "updated_at"])
    return VersionEvent.objects.create(
        action=VersionEvent.Action.FORCE_PROMOTE if forced else VersionEvent.Action.PROMOTE,
        version=version,
        previous_version=previous,
        actor=user,
        reason=reason,
        verdict=verdict.as_dict(),
    )


@transaction.atomic
def do_rollback(
    direction: str, kind: str, *, acting_user: Any = None, reason: str = ""
) -> VersionEvent:
    """Return the alias to the version the active one replaced (or to none: LLM everywhere).

    The event's `version` is the version rolled back; `previous_version` the one restored.
    """
    _lock(direction, kind)
    current = ModelVersion.objects.active().filter(direction=direction, kind=kind).first()
    if current is None:
        raise RegistryError(f"no active {direction}/{kind} version to roll back")
    restored = _step_back(current)
    user = acting_user if getattr(acting_user, "pk", None) else None
    return VersionEvent.objects.create(
        action=VersionEvent.Action.ROLLBACK,
        version=current,
        previous_version=restored,
        actor=user,
        reason=reason,
    )


def _retire_active(direction: str, kind: str) -> ModelVersion | None:
    active = ModelVersion.objects.active().filter(direction=direction, kind=kind).first()
    if active is not None:
        active.is_active = False
        active.status = VersionStatus.RETIRED
        active.save(update_fields=["is_active", "status", "updated_at"])
    return active


@transaction.atomic
def do_demote(version: ModelVersion, *, reason: str, evidence: dict[str, Any]) -> VersionEvent:
    """Stop an active version serving because its live answers fell below the promise.

    The alias returns to what the version replaced (as a rollback would), or to no local model
    of that kind; the event keeps the evidence (the live audit's counts and interval).
    """
    _lock(version.direction, version.kind)
    version.refresh_from_db()
    if not version.is_active:
        raise RegistryError(f"v{version.pk} is not active")
    restored = _step_back(version)
    return VersionEvent.objects.create(
        action=VersionEvent.Action.DEMOTE,
        version=version,
        previous_version=restored,
        reason=reason,
        verdict=evidence,
    )


def _lock(direction: str, kind: str) -> None:
    """Lock a direction's versions so that two registry changes cannot interleave."""
    list(ModelVersion.objects.select_for_update().filter(direction=direction, kind=kind))


def _step_back(current: ModelVersion) -> ModelVersion | None:
    """Retire `current` and restore the version its last promotion replaced (if any, and never
    one that itself failed its live audit). Returns the restored version."""
    promotion = (
        current.events.filter(
            action__in=[VersionEvent.Action.PROMOTE, VersionEvent.Action.FORCE_PROMOTE]
        )
        .order_by("-created_at", "-id")
        .first()
    )
    restored = promotion.previous_version if promotion else None
    _retire_active(current.direction, current.kind)
    if (
        restored is None
        or restored.status not in (VersionStatus.READY, VersionStatus.RETIRED)
        or restored.events.filter(action=VersionEvent.Action.DEMOTE).exists()
    ):
        return None
    restored.status = VersionStatus.READY
    restored.is_active = True
    restored.save(update_fields=["status", "is_active", "updated_at"])
    return restored
