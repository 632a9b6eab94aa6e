from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from boundary.models import ModelVersion, VersionEvent
from boundary.registry import PromotionRefused, RegistryError, do_promote, do_rollback, gate_verdict
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def candidate(headline=0.6, baseline=None, calibration=None, **fields):
    metrics = {"headline": headline}
    if calibration is not None:
        metrics["calibration"] = calibration
    if baseline is not None:
        metrics["baseline"] = {"version": baseline[0].pk, "headline": baseline[1]}
    return ModelVersionFactory(metrics=metrics, **fields)


def test_the_first_good_candidate_passes_the_gate():
    assert gate_verdict(candidate()).passed


def test_a_candidate_below_the_floor_is_refused(settings):
    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.5}
    verdict = gate_verdict(candidate(headline=0.4))
    assert not verdict.passed
    assert "below the floor" in verdict.reasons[0]


def test_a_candidate_without_a_threshold_is_refused():
    assert not gate_verdict(candidate(threshold=None)).passed


def test_an_uncalibrated_candidate_is_refused_and_says_why():
    metrics = {"headline": 0.9, "calibration": {"calibrated": False, "threshold": None}}
    verdict = gate_verdict(ModelVersionFactory(metrics=metrics, threshold=None))
    assert not verdict.passed
    assert "uncalibrated" in verdict.reasons[0]


def test_staff_may_force_an_uncalibrated_candidate_with_a_reason_and_it_is_logged():
    staff = UserFactory(is_staff=True)
    metrics = {"headline": 0.9, "calibration": {"calibrated": False, "threshold": None}}
    version = ModelVersionFactory(metrics=metrics, threshold=None)
    with pytest.raises(RegistryError):
        do_promote(version, acting_user=staff, force=True)
    event = do_promote(version, acting_user=staff, force=True, reason="try it degraded-only")
    assert (event.action, event.reason) == ("force_promote", "try it degraded-only")
    assert "uncalibrated" in event.verdict["reasons"][0]


def test_a_threshold_that_missed_its_target_on_held_out_data_is_refused():
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "held_out": {"agreement": 0.8, "agreement_interval": [0.72, 0.86]},
    }
    verdict = gate_verdict(candidate(calibration=calibration))
    assert not verdict.passed
    assert "held-out" in verdict.reasons[0]


def test_a_held_out_interval_that_reaches_the_target_passes():
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "held_out": {"agreement": 0.93, "agreement_interval": [0.85, 0.97]},
    }
    assert gate_verdict(candidate(calibration=calibration)).passed


def test_keeping_sure_triples_of_unsure_answers_that_spoils_them_is_refused():
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "held_out": {
            "agreement": 0.98,
            "agreement_interval": [0.93, 0.99],
            "completed": {"answers": 80, "agreement": 0.85, "agreement_interval": [0.76, 0.91]},
        },
    }
    verdict = gate_verdict(candidate(calibration=calibration))
    assert not verdict.passed
    assert "right as a whole only 85.0%" in verdict.reasons[0]


def test_completed_answers_do_not_matter_to_a_version_that_keeps_no_triples():
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "per_triple": False,
        "held_out": {
            "agreement": 0.98,
            "agreement_interval": [0.93, 0.99],
            "completed": {"answers": 80, "agreement": 0.85, "agreement_interval": [0.76, 0.91]},
        },
    }
    assert gate_verdict(candidate(calibration=calibration)).passed


def test_a_threshold_that_answered_nothing_held_out_is_refused_as_unproven():
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "choice": {"count": 385, "answered": 60, "agreement": 0.98},
        "held_out": {"count": 385, "answered": 0, "agreement": None, "agreement_interval": None},
    }
    verdict = gate_verdict(candidate(calibration=calibration))
    assert not verdict.passed
    assert "none of the 385 eval examples it was not chosen on" in verdict.reasons[0]
    assert verdict.refused_only_for_calibration  # more evidence may prove it: recalibration


def test_a_candidate_must_beat_the_active_version_on_the_same_data():
    active = candidate(headline=0.7, is_active=True)
    worse = candidate(headline=0.65, baseline=(active, 0.7))
    better = candidate(headline=0.75, baseline=(active, 0.7))
    assert not gate_verdict(worse).passed
    assert gate_verdict(better).passed


def test_a_candidate_never_compared_with_the_active_version_is_refused():
    candidate(is_active=True)
    verdict = gate_verdict(candidate(headline=0.99))
    assert "not evaluated against the active" in verdict.reasons[0]


def test_promotion_makes_the_candidate_active_and_retires_the_previous_one():
    staff = UserFactory(is_staff=True)
    old = candidate(headline=0.5, is_active=True)
    new = candidate(headline=0.6, baseline=(old, 0.5))
    event = do_promote(new, acting_user=staff, reason="better")
    old.refresh_from_db()
    new.refresh_from_db()
    assert (new.is_active, new.promoted_by, old.is_active, old.status) == (
        True,
        staff,
        False,
        "retired",
    )
    assert (event.action, event.previous_version, event.actor) == ("promote", old, staff)


def test_a_refused_promotion_changes_nothing_and_is_logged():
    active = candidate(headline=0.7, is_active=True)
    worse = candidate(headline=0.6, baseline=(active, 0.7))
    with pytest.raises(PromotionRefused):
        do_promote(worse)
    assert ModelVersion.objects.get(is_active=True) == active
    assert VersionEvent.objects.get().action == "refused"


def test_staff_can_force_a_promotion_with_a_reason():
    active = candidate(headline=0.7, is_active=True)
    worse = candidate(headline=0.6, baseline=(active, 0.7))
    event = do_promote(worse, force=True, reason="the eval set is stale")
    assert (event.action, event.reason) == ("force_promote", "the eval set is stale")


def test_forcing_without_a_reason_is_refused():
    active = candidate(headline=0.7, is_active=True)
    with pytest.raises(RegistryError, match="reason"):
        do_promote(candidate(headline=0.6, baseline=(active, 0.7)), force=True)


def test_rollback_restores_the_version_the_promotion_replaced():
    old = candidate(headline=0.5)
    do_promote(old)
    new = candidate(headline=0.6, baseline=(old, 0.5))
    do_promote(new)
    event = do_rollback("decomposition", "generative", reason="regression in prod")
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.is_active, new.is_active, new.status) == (True, False, "retired")
    assert (event.action, event.version, event.previous_version) == ("rollback", new, old)


def test_rolling_back_the_first_version_leaves_the_llm_alone():
    first = candidate()
    do_promote(first)
    event = do_rollback("decomposition", "generative", reason="bad")
    assert event.previous_version is None
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_rollback_with_nothing_active_is_an_error():
    with pytest.raises(RegistryError):
        do_rollback("decomposition", "generative", reason="?")


def test_the_database_allows_one_active_version_per_direction_and_kind():
    ModelVersionFactory(is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(is_active=True)


def test_an_encoder_and_a_generator_can_both_be_active():
    ModelVersionFactory(is_active=True, kind="encoder", backend="onnx")
    ModelVersionFactory(is_active=True, kind="generative")
    assert ModelVersion.objects.active().count() == 2


def test_the_database_allows_one_training_in_flight_per_direction():
    ModelVersionFactory(status="training")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(status="queued")


def test_only_ready_versions_can_be_active_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(status="failed", is_active=True)


def test_a_rollback_never_restores_a_version_the_live_audit_demoted():
    from boundary.registry import do_demote

    staff = UserFactory(is_staff=True)
    old = candidate(headline=0.5)
    do_promote(old, acting_user=staff)
    do_demote(old, reason="live agreement below target", evidence={"audits": 30})
    do_promote(old, acting_user=staff, force=True, reason="staff want it back")
    new = candidate(headline=0.6, baseline=(old, 0.5))
    do_promote(new, acting_user=staff)
    event = do_rollback("decomposition", "generative", acting_user=staff, reason="worse")
    assert event.previous_version is None
    assert not ModelVersion.objects.filter(is_active=True).exists()
