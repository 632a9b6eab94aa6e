"""A newly active version loads in the background; requests and probes never wait for it
(boundary.warming), except where no LLM could answer instead."""

from __future__ import annotations

import threading

import httpx
import pytest

from boundary import views, warming
from boundary.models import BoundaryCall
from boundary.students import BackendUnavailable, cached_student, register_backend
from boundary.triples import Triple
from tests.anthropic_mock import tool_message
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db

TEACHER_TRIPLES = [{"subject": "Chris", "predicate": "worksAt", "object": "Valence"}]


class GatedLoader:
    """Loads a scripted student only once the test opens the gate: a slow download, on cue."""

    def __init__(self, student: ScriptedStudent | None = None, error: Exception | None = None):
        self.student = student or ScriptedStudent(
            [Triple("Chris", "prefers", "tea")], confidence=0.99
        )
        self.error = error
        self.gate = threading.Event()
        self.started = threading.Event()
        self.loads = 0

    def __call__(self, spec):
        self.loads += 1
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        return self.student


@pytest.fixture
def in_background(settings):
    settings.VALENCE_LOAD_IN_BACKGROUND = True


@pytest.fixture
def gated(in_background):
    loader = GatedLoader()
    register_backend("gated", loader)
    yield loader
    loader.gate.set()  # no thread is left waiting


def active_version():
    return ModelVersionFactory(backend="gated", is_active=True, threshold=0.5)


def decompose(api, text: str = "Chris prefers tea."):
    return api.post("/api/v1/decompose", {"text": text}, format="json")


def wait_until_loaded(version) -> None:
    load = warming.warm(version.student_spec())
    if load is not None:
        assert load.done.wait(10)


def test_the_llm_answers_while_the_version_loads(api, teacher_api, gated):
    active_version()
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TEACHER_TRIPLES}))
    body = decompose(api).json()
    assert body["served_by"] == "teacher"
    call = BoundaryCall.objects.get()
    assert call.fallback_reason == "model_loading"
    timings = [(t["stage"], t["outcome"]) for t in call.diagnostics["timings"]]
    assert timings == [("memory", "miss"), ("generative", "loading"), ("teacher", "answered")]


def test_the_version_serves_once_loaded(api, teacher_api, gated):
    version = active_version()
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TEACHER_TRIPLES}))
    decompose(api)
    gated.gate.set()
    wait_until_loaded(version)
    body = decompose(api, "Chris prefers coffee.").json()  # a new text: nothing remembered
    assert (body["served_by"], body["model_version"]) == ("student", version.pk)


def test_requests_meeting_a_loading_version_start_one_load(api, teacher_api, gated):
    active_version()
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TEACHER_TRIPLES}))
    for _ in range(3):
        decompose(api)
    assert gated.loads == 1


def test_without_an_llm_key_a_request_waits_for_the_load(api, gated):
    version = active_version()
    threading.Timer(0.2, gated.gate.set).start()
    body = decompose(api).json()
    assert (body["served_by"], body["model_version"]) == ("student", version.pk)


def test_a_failed_load_is_passed_over_without_loading_again(api, teacher_api, gated):
    version = active_version()
    gated.error = BackendUnavailable("manifest does not match")
    gated.gate.set()
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TEACHER_TRIPLES}))
    wait_until_loaded(version)
    decompose(api)
    assert gated.loads == 1
    assert BoundaryCall.objects.get().fallback_reason == "student_error"


def test_a_failed_load_is_tried_again_later(api, teacher_api, gated, monkeypatch):
    version = active_version()
    gated.error = BackendUnavailable("store unreachable")
    gated.gate.set()
    wait_until_loaded(version)
    monkeypatch.setattr(warming, "RETRY_AFTER_S", 0.0)
    gated.error = None
    wait_until_loaded(version)
    assert gated.loads == 2
    assert cached_student(version.pk) is gated.student


def test_a_broken_model_stays_not_ready_while_its_load_is_retried(client, gated, monkeypatch):
    monkeypatch.setattr(views, "_was_ready", True)
    version = active_version()
    gated.error = BackendUnavailable("manifest does not match")
    gated.gate.set()
    wait_until_loaded(version)
    monkeypatch.setattr(warming, "RETRY_AFTER_S", 0.0)
    gated.gate.clear()  # the retry hangs on the store
    response = client.get("/readyz")
    assert not warming.warm(version.student_spec()).done.is_set()  # the retry is under way
    assert (response.status_code, response.json()["status"]) == (503, "error")


def test_a_cold_process_is_not_ready_while_its_model_loads(client, gated, monkeypatch):
    monkeypatch.setattr(views, "_was_ready", False)
    version = active_version()
    response = client.get("/readyz")  # returns at once: the gate is still closed
    assert response.status_code == 503
    assert response.json()["status"] == "loading"
    assert response.json()[f"v{version.pk} {version.direction}/{version.kind}"] == "loading"


def test_a_process_that_was_ready_stays_ready_while_a_promoted_model_loads(
    client, gated, monkeypatch
):
    monkeypatch.setattr(views, "_was_ready", False)
    assert client.get("/readyz").status_code == 200  # no model yet: ready
    active_version()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "warming"


def test_the_probe_reports_a_loaded_model_as_ok(client, gated, monkeypatch):
    monkeypatch.setattr(views, "_was_ready", False)
    version = active_version()
    gated.gate.set()
    wait_until_loaded(version)
    response = client.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (200, "ok")


@pytest.mark.django_db(transaction=True)  # the warming thread reads the registry itself
def test_a_starting_web_process_loads_the_active_versions(gated):
    version = active_version()
    warming.warm_active().join(10)
    assert gated.started.wait(10)
    gated.gate.set()
    wait_until_loaded(version)
    assert (gated.loads, cached_student(version.pk)) == (1, gated.student)
