"""Liveness and readiness probes, as a load balancer reads them."""

from __future__ import annotations

import pytest

from boundary import students
from boundary.students import BackendUnavailable
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db


def test_healthz_only_says_the_process_answers(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").json() == {"status": "ok"}


def test_a_fresh_install_without_models_is_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_every_active_model_that_loads_is_listed_as_ok(client, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True)
    scripted_loader.students[version.pk] = ScriptedStudent()
    body = client.get("/readyz").json()
    assert body[f"v{version.pk} {version.direction}/{version.kind}"] == "ok"


def test_an_active_model_that_cannot_load_makes_the_process_not_ready(client, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True)

    def broken(spec):
        raise BackendUnavailable("no model folder at /gone")

    students.register_backend("scripted", broken)  # the fixture unregisters it afterwards
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "no model folder" in response.json()[f"v{version.pk} {version.direction}/{version.kind}"]


def test_a_broker_that_does_not_answer_is_reported_but_keeps_the_process_serving(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["broker"].startswith("error")
