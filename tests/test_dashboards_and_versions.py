"""Dashboard series (JSON and CSV), the model versions page and the admin registry actions."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from boundary.models import BoundaryCall, ModelVersion, VersionEvent
from review import metrics
from review.roles import REVIEWERS, STAFF
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(group: str, **fields):
    user = UserFactory(**fields)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def traffic():
    """Two days of calls: local answers, LLM answers with and without a fallback reason."""
    version = ModelVersionFactory(is_active=True)
    now = timezone.now()
    calls = []
    for day, latency, served in [(0, 5.0, "student"), (0, 800.0, "teacher"), (1, 15.0, "student")]:
        calls.append(
            BoundaryCallFactory(
                served_by=served,
                model_version=version if served == "student" else None,
                latency_ms=latency,
                fallback_reason="low_confidence" if served == "teacher" else "",
                cost_usd=Decimal("0.002") if served == "teacher" else None,
                avoided_cost_usd=Decimal("0.002") if served == "student" else None,
                confidence=0.9 if served == "student" else None,
            )
        )
        BoundaryCall.objects.filter(pk=calls[-1].pk).update(
            created_at=now - timedelta(days=day, minutes=5)
        )
    BoundaryCallFactory(served_by="imported")  # never part of live metrics
    BoundaryCall.objects.filter(pk=calls[0].pk).update(review_status="accepted")
    BoundaryCall.objects.filter(pk=calls[2].pk).update(review_status="corrected")
    return version


def test_each_series_is_one_query(traffic):
    window = metrics.Window.parse("7d", "")
    for name, build in metrics.SERIES.items():
        with CaptureQueriesContext(connection) as queries:
            build(window)
        assert len(queries) == 1, name


def test_the_fallback_rate_counts_live_calls_only(traffic):
    rows = metrics.fallback_rate(metrics.Window.parse("7d", ""))
    assert sum(r["calls"] for r in rows) == 3
    assert sum(r["fallbacks"] for r in rows) == 1


def test_latency_is_split_between_local_and_llm_answers(traffic):
    rows = metrics.latency(metrics.Window.parse("7d", ""))
    today = rows[-1]
    assert (today["local_p50_ms"], today["llm_p50_ms"]) == (5.0, 800.0)


def test_a_degraded_answer_counts_as_local_latency():
    BoundaryCallFactory(served_by="degraded", model_version=ModelVersionFactory(), latency_ms=7.0)
    [row] = metrics.latency(metrics.Window.parse("24h", ""))
    assert (row["local_p50_ms"], row["llm_p50_ms"]) == (7.0, None)


def test_a_week_is_drawn_by_the_hour():
    assert metrics.Window.parse("7d", "").hourly
    assert not metrics.Window.parse("30d", "").hourly


def test_review_outcomes_are_rates_per_model_version(traffic):
    [row] = metrics.review_outcomes(metrics.Window.parse("7d", ""))
    assert (row["reviewed"], row["acceptance_rate"], row["correction_rate"]) == (2, 0.5, 0.5)


def test_the_summary_projects_monthly_spend_from_the_last_week(traffic):
    summary = metrics.summary(metrics.Window.parse("24h", ""))
    assert summary["spend_usd"] == 0.002
    assert summary["projected_monthly_spend_usd"] == pytest.approx(0.002 * 30 / 7, abs=1e-6)


def test_the_dashboard_page_lists_every_chart(client, traffic):
    client.force_login(member(REVIEWERS))
    page = client.get("/dashboards/", {"range": "30d"}).content.decode()
    for name in metrics.SERIES:
        assert f'data-series="{name}"' in page


def test_a_series_downloads_as_csv(client, traffic):
    client.force_login(member(REVIEWERS))
    response = client.get("/dashboards/series/spend.csv", {"range": "7d"})
    assert response["Content-Disposition"] == 'attachment; filename="spend-all-7d.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == ["bucket", "spend_usd", "saved_usd"]
    assert sum(float(r["spend_usd"]) for r in rows) == pytest.approx(0.002)


def test_an_unknown_series_is_a_404(client):
    client.force_login(member(REVIEWERS))
    assert client.get("/dashboards/series/nope.json").status_code == 404
    assert client.get("/dashboards/series/volume.xml").status_code == 404


def test_the_versions_page_shows_metrics_progress_and_the_gates_verdict(client):
    ModelVersionFactory(is_active=True, metrics={"headline": 0.61, "exact": {"f1": 0.61}})
    queued = ModelVersionFactory(status="queued", threshold=None)
    candidate = ModelVersionFactory(kind="encoder", metrics={"headline": 0.2})
    client.force_login(member(STAFF))
    page = client.get("/models/").content.decode()
    assert "0.610" in page
    assert f'hx-get="/models/{queued.pk}/progress"' in page
    assert f"/models/{candidate.pk}/promote" in page and "Gate:" in page


def test_the_versions_page_shows_the_held_out_promise_its_interval_and_the_ece(client):
    calibration = {
        "calibrated": True,
        "target": 0.95,
        "ece": 0.042,
        "held_out": {
            "fallback_rate": 0.25,
            "agreement": 0.96,
            "agreement_interval": [0.91, 0.98],
            "answered": 120,
        },
    }
    ModelVersionFactory(metrics={"headline": 0.7, "calibration": calibration})
    client.force_login(member(STAFF))
    page = client.get("/models/").content.decode()
    assert "75.0 % · 96.0 %" in page
    assert "91.0 %–98.0 %, n=120" in page
    assert "0.042" in page


def test_the_versions_page_marks_an_uncalibrated_version(client):
    metrics = {"headline": 0.4, "calibration": {"calibrated": False, "threshold": None}}
    version = ModelVersionFactory(metrics=metrics, threshold=None)
    client.force_login(member(STAFF))
    page = client.get("/models/").content.decode()
    assert f'data-threshold="{version.pk}"><strong>uncalibrated</strong>' in page


def test_the_versions_page_says_a_version_was_judged_again_on_new_evidence(client):
    from training.models import Recalibration

    version = ModelVersionFactory(threshold=0.8, metrics={"headline": 0.8})
    Recalibration.objects.create(version=version, evidence=640, status="done", calibrated=True)
    client.force_login(member(STAFF))
    page = client.get("/models/").content.decode()
    assert "judged again on 640 new pairs: calibrated" in page


def test_staff_promote_and_roll_back_from_the_page_with_reasons(client):
    old = ModelVersionFactory(is_active=True, metrics={"headline": 0.5})
    new = ModelVersionFactory(
        metrics={"headline": 0.7, "baseline": {"version": old.pk, "headline": 0.5}}
    )
    client.force_login(member(STAFF, username="sam"))
    client.post(f"/models/{new.pk}/promote", {"reason": "better on eval"})
    new.refresh_from_db()
    assert new.is_active
    client.post(f"/models/{new.pk}/rollback", {"reason": "complaints"})
    old.refresh_from_db()
    assert old.is_active
    actions = list(VersionEvent.objects.order_by("id").values_list("action", "actor__username"))
    assert actions == [("promote", "sam"), ("rollback", "sam")]


def test_a_rollback_without_a_reason_is_refused(client):
    version = ModelVersionFactory(is_active=True)
    client.force_login(member(STAFF))
    response = client.post(f"/models/{version.pk}/rollback", {"reason": " "}, follow=True)
    assert "needs a reason" in response.content.decode()
    version.refresh_from_db()
    assert version.is_active


def test_the_admin_promote_action_asks_for_a_reason_then_goes_through_the_gate(client):
    version = ModelVersionFactory(metrics={"headline": 0.7})
    client.force_login(member(STAFF, is_staff=True))
    url = "/admin/boundary/modelversion/"
    form = {"action": "promote", "_selected_action": [version.pk]}
    confirm = client.post(url, form)
    assert "The gate passes" in confirm.content.decode()
    client.post(url, {**form, "confirm": "1", "reason": "ready"})
    version.refresh_from_db()
    assert version.is_active
    assert VersionEvent.objects.get().reason == "ready"


def test_the_admin_actions_are_hidden_from_users_who_cannot_promote(client):
    user = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(user)
    page = client.get("/admin/boundary/modelversion/").content.decode()
    assert 'value="promote"' not in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark is PostgreSQL's")
def test_the_dashboard_benchmark_runs_end_to_end_on_a_scratch_database():
    """Not a timed test: it checks the one-command benchmark works and cleans up after itself."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("bench_dashboards", "--calls", "2000", "--runs", "1", stdout=out)
    assert "slowest chart:" in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%_dashbench'")
        assert cursor.fetchone()[0] == 0


# --- Train now ---------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    """What would be handed to the django-q2 worker."""
    runs = []
    monkeypatch.setattr("training.trigger._enqueue", runs.append)
    return runs


def test_staff_queue_a_training_from_the_page(client, enqueued, django_capture_on_commit_callbacks):
    client.force_login(member(STAFF, username="sam"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/models/train", {"student": "decomposition:encoder"}, follow=True)
    version = ModelVersion.objects.get()
    assert (version.direction, version.kind, version.status) == (
        "decomposition",
        "encoder",
        "queued",
    )
    assert version.training_run.trigger == "manual" and version.created_by.username == "sam"
    assert [run.version_id for run in enqueued] == [version.pk]
    assert f"v{version.pk} queued" in response.content.decode()


def test_a_second_training_of_the_same_student_is_refused(client, enqueued):
    client.force_login(member(STAFF))
    client.post("/models/train", {"student": "recomposition:generative"})
    response = client.post("/models/train", {"student": "recomposition:generative"}, follow=True)
    assert ModelVersion.objects.count() == 1
    assert "already queued or running" in response.content.decode()


def test_a_student_that_cannot_be_trained_is_refused(client, enqueued):
    client.force_login(member(STAFF))
    response = client.post("/models/train", {"student": "recomposition:encoder"}, follow=True)
    assert not ModelVersion.objects.exists()
    assert "Choose a direction" in response.content.decode()


def test_reviewers_cannot_start_a_training(client, enqueued):
    client.force_login(member(REVIEWERS))
    assert client.post("/models/train", {"student": "decomposition:encoder"}).status_code == 403
    assert not ModelVersion.objects.exists()
