"""The Prometheus endpoint: who may read it, and what the service counts.

Counters live in the process for the whole test session, so each test reads a delta.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.values import MultiProcessValue

from boundary.models import BoundaryCall
from boundary.triples import Triple
from tests.anthropic_mock import error, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db

TEXT = "Chris prefers composable architectures."
TRIPLES = [{"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def delta(name: str, **labels: str) -> Callable[[], float]:
    """How much the sample has grown since this call."""
    before = sample(name, **labels)
    return lambda: sample(name, **labels) - before


def scraped(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of one scrape of /metrics, keyed by name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def decompose(api):
    return api.post("/api/v1/decompose", {"text": TEXT}, format="json")


# --- Who may read it. ---


def test_a_client_on_this_machine_reads_the_metrics_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"valence_metrics_database_up 1.0" in response.content


def test_an_ipv6_loopback_client_reads_the_metrics(client):
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_a_remote_client_is_refused_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_a_request_relayed_by_a_proxy_on_this_machine_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert response.status_code == 403


def test_with_a_token_a_remote_scraper_that_sends_it_reads_the_metrics(client, settings):
    settings.VALENCE_METRICS_TOKEN = "scrape-me"
    response = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-me"
    )
    assert response.status_code == 200


def test_with_a_token_even_a_loopback_client_must_send_it(client, settings):
    settings.VALENCE_METRICS_TOKEN = "scrape-me"
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_with_a_token_a_wrong_one_is_refused(client, settings):
    settings.VALENCE_METRICS_TOKEN = "scrape-me"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-you")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


# --- HTTP requests. ---


def test_a_request_is_counted_under_its_route_template_not_its_path(api):
    grown = delta(
        "valence_http_requests_total", route="/api/v1/calls/<int:pk>", method="GET", status="404"
    )
    api.get("/api/v1/calls/987654")
    assert grown() == 1


def test_a_request_is_timed_under_its_route_template(api):
    grown = delta(
        "valence_http_request_duration_seconds_count", route="/api/v1/models", method="GET"
    )
    api.get("/api/v1/models")
    assert grown() == 1


def test_a_path_no_route_matches_is_counted_as_unmatched(client):
    grown = delta("valence_http_requests_total", route="unmatched", method="GET", status="404")
    client.get("/no/such/page/12345")
    assert grown() == 1


def test_healthz_answers_and_is_counted(client):
    grown = delta("valence_http_requests_total", route="/healthz", method="GET", status="200")
    assert client.get("/healthz").json()["status"] == "ok"
    assert grown() == 1


# --- The cascade. ---


def test_a_students_answer_is_counted_with_its_stage_and_version(api, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple("Chris", "prefers", "composable architectures")], confidence=0.95
    )
    grown = delta(
        "valence_cascade_calls_total",
        direction="decomposition",
        served_by="student",
        stage="generative",
        version=str(version.pk),
        fallback_reason="",
    )
    assert decompose(api).json()["served_by"] == "student"
    assert grown() == 1


def test_a_teacher_answer_is_counted_with_its_fallback_reason(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    grown = delta(
        "valence_cascade_calls_total",
        direction="decomposition",
        served_by="teacher",
        stage="teacher",
        version="",
        fallback_reason="no_active_model",
    )
    decompose(api)
    assert grown() == 1


def test_an_unsure_stage_is_counted_under_its_version(api, teacher_api, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple("Chris", "likes", "tea")], confidence=0.3
    )
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    grown = delta(
        "valence_cascade_stage_outcomes_total",
        direction="decomposition",
        stage="generative",
        version=str(version.pk),
        outcome="unsure",
    )
    decompose(api)
    assert grown() == 1


def test_a_teacher_error_is_counted_by_its_code(api, teacher_api):
    teacher_api.side_effect = [error(529, "overloaded_error", "Overloaded")]
    grown = delta("valence_teacher_errors_total", direction="decomposition", code="overloaded")
    assert decompose(api).status_code == 503
    assert grown() == 1


# --- Read from the database at scrape time. ---


def test_training_status_appears_per_direction_and_kind(client):
    ModelVersionFactory(kind="encoder", status="training")
    ModelVersionFactory(kind="encoder", status="failed")
    samples = scraped(client)
    labels = (("direction", "decomposition"), ("kind", "encoder"))
    assert samples[("valence_model_versions", (*labels, ("status", "training")))] == 1
    assert samples[("valence_model_versions", (*labels, ("status", "queued")))] == 0


def test_the_active_version_of_each_stage_appears(client):
    version = ModelVersionFactory(is_active=True)
    samples = scraped(client)
    key = (("direction", "decomposition"), ("kind", "generative"))
    assert samples[("valence_active_model_version", key)] == version.pk


def test_the_fallback_rate_is_the_share_of_live_calls_that_asked_the_llm(client):
    version = ModelVersionFactory()
    BoundaryCallFactory(fallback_reason="low_confidence")
    BoundaryCallFactory.create_batch(3, served_by="student", model_version=version)
    BoundaryCallFactory(served_by="imported")  # a reference pair, not traffic
    samples = scraped(client)
    key = (("direction", "decomposition"),)
    assert samples[("valence_fallback_rate_last_hour", key)] == 0.25


def test_the_fallback_rate_leaves_out_calls_older_than_an_hour(client):
    BoundaryCallFactory(served_by="student", model_version=ModelVersionFactory())
    old = BoundaryCallFactory(fallback_reason="no_active_model")
    BoundaryCall.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    samples = scraped(client)
    assert samples[("valence_fallback_rate_last_hour", (("direction", "decomposition"),))] == 0


# --- Several processes. ---


def test_with_a_multiprocess_dir_the_endpoint_sums_what_other_processes_wrote(
    client, monkeypatch, tmp_path
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # What a gunicorn worker with pid 4242 wrote to its file, as prometheus_client writes it.
    other_process = MultiProcessValue(process_identifier=lambda: 4242)
    value = other_process(
        "counter",
        "valence_teacher_errors",
        "valence_teacher_errors_total",
        ("direction", "code"),
        ("recomposition", "timeout"),
        "LLM errors.",
    )
    value.inc(3)
    samples = scraped(client)
    key = (("code", "timeout"), ("direction", "recomposition"))
    assert samples[("valence_teacher_errors_total", key)] == 3
