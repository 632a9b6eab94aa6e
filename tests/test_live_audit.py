"""The live quality audit: sampled local answers re-asked to the LLM (faked at the HTTP layer)."""

from __future__ import annotations

import io
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from boundary.fingerprint import call_group_key, split_for
from boundary.models import BoundaryCall, VersionEvent
from boundary.triples import Triple
from review.roles import REVIEWERS, STAFF
from tests.anthropic_mock import error, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory
from tests.scripted_student import ScriptedStudent
from training.audit import do_audit_pass, is_sampled, live_agreement
from training.evaluation import wilson_interval
from training.models import LiveAudit
from training.tasks import audit_live_calls

pytestmark = pytest.mark.django_db

TRIPLES = [
    {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"},
    {"subject": "Chris", "predicate": "worksAt", "object": "Valence"},
]
OTHER = [{"subject": "Chris", "predicate": "hates", "object": "monoliths"}]
CALIBRATION = {
    "calibration": {
        "target": 0.95,
        "threshold": 0.5,
        "held_out": {"agreement": 0.97, "agreement_interval": [0.93, 0.99]},
    }
}


@pytest.fixture
def audit_on(teacher_api, settings):
    """A configured teacher, every local answer sampled, a roomy cap, no demotion by default."""
    settings.VALENCE_AUDIT_RATE = 1.0
    settings.VALENCE_AUDIT_DAILY_USD = 10.0
    settings.VALENCE_AUDIT_MIN_SAMPLES = 1000
    return teacher_api


def teacher_says(route, triples) -> None:
    route.return_value = httpx.Response(200, json=tool_message({"triples": triples}))


def active_version(**fields):
    return ModelVersionFactory(is_active=True, metrics=CALIBRATION, **fields)


def local_call(version, **fields):
    defaults = {
        "served_by": "student",
        "model_version": version,
        "direction": version.direction,
        "confidence": 0.9,
        "output": TRIPLES,
        "client": None,
    }
    return BoundaryCallFactory(**{**defaults, **fields})


def member(group: str):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=group))
    return user


def test_the_sample_share_matches_the_configured_rate():
    share = sum(is_sampled(call_id, 0.02) for call_id in range(1, 50_001)) / 50_000
    assert share == pytest.approx(0.02, abs=0.002)


def test_a_pass_audits_exactly_the_calls_the_stable_hash_samples(audit_on, settings):
    settings.VALENCE_AUDIT_RATE = 0.1
    teacher_says(audit_on, TRIPLES)
    version = active_version()
    calls = [local_call(version) for _ in range(200)]
    do_audit_pass()
    expected = {call.pk for call in calls if is_sampled(call.pk, 0.1)}
    assert expected
    assert set(LiveAudit.objects.values_list("call_id", flat=True)) == expected
    assert audit_on.call_count == len(expected)


def test_serving_a_call_never_asks_the_teacher_for_the_audit(api, audit_on, scripted_loader):
    version = active_version(backend="scripted", threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple(**triple) for triple in TRIPLES], confidence=0.95
    )
    teacher_says(audit_on, TRIPLES)
    response = api.post("/api/v1/decompose", {"text": "Chris works at Valence."}, format="json")
    assert response.json()["served_by"] == "student"
    assert (audit_on.call_count, LiveAudit.objects.count()) == (0, 0)
    do_audit_pass()
    assert audit_on.call_count == 1
    assert LiveAudit.objects.get().call_id == response.json()["call_id"]


def test_a_pass_leaves_already_audited_calls_alone(audit_on):
    teacher_says(audit_on, TRIPLES)
    local_call(active_version())
    do_audit_pass()
    do_audit_pass()
    assert audit_on.call_count == 1


def test_the_daily_cap_stops_the_audit_and_says_why(audit_on, settings):
    settings.VALENCE_AUDIT_DAILY_USD = 0.006  # each faked answer costs $0.0027
    teacher_says(audit_on, TRIPLES)
    version = active_version()
    for _ in range(5):
        local_call(version)
    report = do_audit_pass()
    assert (report.done, report.skipped, audit_on.call_count) == (2, 3, 2)
    spent = sum(a.cost_usd or 0 for a in LiveAudit.objects.all())
    assert spent == Decimal("0.0054") and spent <= Decimal("0.006")
    skipped = LiveAudit.objects.filter(status="skipped")
    assert all("daily audit cap of $0.006 reached" in a.error for a in skipped)


def test_degraded_answers_are_not_audited(audit_on):
    local_call(active_version(), served_by="degraded")
    do_audit_pass()
    assert (audit_on.call_count, LiveAudit.objects.count()) == (0, 0)


def test_a_decomposition_agrees_when_the_teacher_states_the_same_triples(audit_on):
    teacher_says(audit_on, list(reversed(TRIPLES)))
    local_call(active_version())
    do_audit_pass()
    audit = LiveAudit.objects.get()
    assert (audit.status, audit.agreed, audit.triple_precision) == ("done", True, 1.0)


def test_a_decomposition_records_the_share_of_local_triples_the_teacher_stated(audit_on):
    teacher_says(audit_on, [TRIPLES[0], *OTHER])
    local_call(active_version())
    do_audit_pass()
    audit = LiveAudit.objects.get()
    assert (audit.agreed, audit.triple_precision) == (False, 0.5)


def test_a_recomposition_agrees_when_the_teacher_recovers_its_triples(audit_on):
    teacher_says(audit_on, TRIPLES)
    version = active_version(direction="recomposition")
    local_call(version, input=TRIPLES, output="Chris prefers composable architectures at Valence.")
    do_audit_pass()
    audit = LiveAudit.objects.get()
    assert audit.agreed is True
    assert (audit.details["recalled"], audit.details["supported"]) == (2, 2)


def test_a_recomposition_that_states_another_fact_disagrees(audit_on):
    teacher_says(audit_on, [*TRIPLES, *OTHER])
    version = active_version(direction="recomposition")
    local_call(version, input=TRIPLES, output="Chris, who hates monoliths, works at Valence.")
    do_audit_pass()
    audit = LiveAudit.objects.get()
    assert audit.agreed is False
    assert (audit.details["recovered"], audit.details["supported"]) == (3, 2)


def test_the_teachers_audited_answer_is_training_data(audit_on):
    teacher_says(audit_on, OTHER)
    call = local_call(active_version())
    do_audit_pass()
    stored = LiveAudit.objects.get().teacher_call
    assert (stored.served_by, stored.input, stored.output) == ("teacher", call.input, OTHER)
    assert stored.diagnostics["audit_of"] == call.pk
    group = call_group_key("decomposition", call.input, OTHER)
    assert (stored.group_key, stored.split) == (group, split_for(group, 0.1))
    eligible = BoundaryCall.objects.eligible_for_training("decomposition", 0.5)
    assert eligible.filter(pk=stored.pk).exists()


def test_a_disagreement_goes_to_the_top_of_the_review_queue(audit_on):
    teacher_says(audit_on, OTHER)
    local_call(active_version())
    do_audit_pass()
    assert LiveAudit.objects.get().teacher_call.review_priority >= 3.0


def test_a_failing_teacher_fails_the_audit_and_ends_the_pass(audit_on):
    audit_on.side_effect = [error(500, "api_error", "Internal error")]
    version = active_version()
    local_call(version)
    local_call(version)
    report = do_audit_pass()
    assert (report.failed, audit_on.call_count) == (1, 1)
    assert "server_error" in report.stopped
    assert live_agreement([version])[version.pk].audits == 0


def test_a_version_whose_live_agreement_falls_below_target_is_demoted(audit_on, settings):
    settings.VALENCE_AUDIT_MIN_SAMPLES = 10
    teacher_says(audit_on, OTHER)
    version = active_version()
    for _ in range(10):
        local_call(version)
    report = do_audit_pass()
    version.refresh_from_db()
    assert (version.is_active, version.status, report.demoted) == (False, "retired", [version.pk])
    event = VersionEvent.objects.get(action="demote", version=version)
    assert event.actor is None and "0/10" in event.reason
    evidence = event.verdict
    assert (evidence["audits"], evidence["agreed"], evidence["target"]) == (10, 0, 0.95)
    assert evidence["interval"][1] == pytest.approx(wilson_interval(0, 10)[1])
    assert evidence["promise"] == {"agreement": 0.97, "interval": [0.93, 0.99]}


def test_a_version_with_too_few_audits_is_not_demoted(audit_on, settings):
    settings.VALENCE_AUDIT_MIN_SAMPLES = 10
    teacher_says(audit_on, OTHER)
    version = active_version()
    for _ in range(9):
        local_call(version)
    do_audit_pass()
    version.refresh_from_db()
    assert version.is_active


def test_a_version_whose_interval_reaches_the_target_stays_active(audit_on, settings):
    settings.VALENCE_AUDIT_MIN_SAMPLES = 10
    teacher_says(audit_on, TRIPLES)
    version = active_version()
    for _ in range(10):
        local_call(version)
    do_audit_pass()
    version.refresh_from_db()
    assert version.is_active
    assert live_agreement([version])[version.pk].agreement == 1.0


def test_without_an_api_key_the_scheduled_task_is_off_and_says_so(anthropic_api, settings):
    settings.VALENCE_AUDIT_RATE = 1.0
    local_call(active_version())
    assert audit_live_calls() == "live audit off: no API key"
    assert LiveAudit.objects.count() == 0
    assert len(anthropic_api.calls) == 0


def test_the_audit_pass_is_scheduled_every_minute():
    schedule = Schedule.objects.get(func="training.tasks.audit_live_calls")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)


def audited(version, *, agreed: int, total: int) -> None:
    for index in range(total):
        LiveAudit.objects.create(
            call=local_call(version),
            version=version,
            direction=version.direction,
            status="done",
            agreed=index < agreed,
        )


def test_the_models_page_shows_live_agreement_beside_the_promise(client):
    version = active_version()
    audited(version, agreed=18, total=20)
    client.force_login(member(STAFF))
    page = client.get("/models/").content.decode()
    low, high = wilson_interval(18, 20)
    assert f'90.0 % <span class="muted">(95 % CI {low * 100:.1f} %–{high * 100:.1f} %)' in page
    assert '97.0 % <span class="muted">(95 % CI 93.0 %–99.0 %)' in page
    assert "18 / 20 agreed" in page


def test_the_models_page_says_when_the_audit_is_off(client):
    active_version()
    client.force_login(member(STAFF))
    assert "live audit off: no API key" in client.get("/models/").content.decode()


def test_the_dashboards_show_each_active_versions_live_agreement(client):
    version = active_version(direction="recomposition")
    audited(version, agreed=3, total=4)
    client.force_login(member(REVIEWERS))
    page = client.get("/dashboards/", {"direction": "recomposition"}).content.decode()
    assert f'data-live-agreement="{version.pk}">75.0 %' in page


def test_the_live_agreement_costs_the_same_queries_for_any_number_of_versions(client):
    client.force_login(member(STAFF))
    audited(active_version(), agreed=1, total=2)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get("/dashboards/")
        return len(captured)

    before = queries()
    for direction, kind in [("recomposition", "generative"), ("decomposition", "encoder")]:
        audited(active_version(direction=direction, kind=kind), agreed=1, total=2)
    assert queries() == before


def test_audit_boundary_status_prints_each_active_versions_numbers():
    version = active_version()
    audited(version, agreed=1, total=2)
    out = io.StringIO()
    call_command("audit_boundary", "--status", stdout=out)
    text = out.getvalue()
    assert "live audit off: no API key" in text
    assert f"v{version.pk} decomposition/generative: live 50.0 %" in text
