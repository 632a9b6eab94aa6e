"""The API with the LLM faked at the HTTP layer: the real Anthropic SDK runs on every call."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from boundary.models import BoundaryCall
from boundary.triples import Triple
from tests.anthropic_mock import DATED_MODEL, error, text_message, tool_message
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db

TEXT = "Chris prefers composable architectures and works at Valence."
TRIPLES = [
    {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"},
    {"subject": "Chris", "predicate": "worksAt", "object": "Valence"},
]


def decompose(api, text: str = TEXT):
    return api.post("/api/v1/decompose", {"text": text}, format="json")


def without_sources(triples):
    return [{k: t[k] for k in ("subject", "predicate", "object")} for t in triples]


def test_a_decomposition_returns_the_teachers_triples(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    response = decompose(api)
    assert response.status_code == 200
    body = response.json()
    teacher = {"stage": "teacher", "version": None, "confidence": None}
    assert body["triples"] == [{**triple, "source": teacher} for triple in TRIPLES]
    assert (body["served_by"], body["model_version"], body["degraded"]) == ("teacher", None, False)
    assert body["call_id"] == BoundaryCall.objects.get().pk


def test_the_stored_call_holds_model_tokens_cost_and_latency(api, user, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    decompose(api)
    call = BoundaryCall.objects.get()
    assert (call.llm_model, call.input_tokens, call.output_tokens) == (DATED_MODEL, 1200, 300)
    assert call.cost_usd == Decimal("0.002700")
    assert call.latency_ms > 0
    assert (call.client, call.input, call.output) == (user, TEXT, TRIPLES)
    assert call.fallback_reason == "no_active_model"


def test_a_recomposition_returns_the_teachers_text(api, teacher_api):
    text = "Chris prefers composable architectures and works at Valence."
    teacher_api.return_value = httpx.Response(200, json=text_message(text))
    response = api.post("/api/v1/recompose", {"triples": TRIPLES}, format="json")
    assert response.status_code == 200
    assert (response.json()["text"], response.json()["served_by"]) == (text, "teacher")
    assert BoundaryCall.objects.get().output == text


def test_without_a_key_or_model_it_answers_503_and_stores_the_call(api, settings):
    settings.ANTHROPIC_API_KEY = ""
    response = decompose(api)
    assert response.status_code == 503
    error_body = response.json()["error"]
    assert (error_body["code"], error_body["reason"]) == ("teacher_unavailable", "no_api_key")
    call = BoundaryCall.objects.get(pk=error_body["call_id"])
    assert (call.served_by, call.fallback_reason) == ("unserved", "no_active_model")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (error(429, "rate_limit_error", "Slow down", {"retry-after": "7"}), "rate_limited"),
        (error(500, "api_error", "Internal error"), "server_error"),
        (error(529, "overloaded_error", "Overloaded"), "overloaded"),
        (error(401, "authentication_error", "invalid x-api-key"), "authentication_failed"),
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.ConnectError("refused"), "connection_error"),
        (
            httpx.Response(200, json=tool_message({"triples": [{"subject": "Chris"}]})),
            "invalid_output",
        ),
        (httpx.Response(200, json=tool_message({"facts": TRIPLES})), "invalid_output"),
    ],
)
def test_each_teacher_fault_is_a_503_with_its_reason_and_a_stored_call(
    api, teacher_api, reply, reason
):
    teacher_api.side_effect = [reply]
    response = decompose(api)
    assert response.status_code == 503
    assert response.json()["error"]["reason"] == reason
    call = BoundaryCall.objects.get()
    assert (call.served_by, call.teacher_error) == ("unserved", reason)


def test_a_rate_limited_teacher_passes_retry_after_on(api, teacher_api):
    teacher_api.side_effect = [error(429, "rate_limit_error", "Slow down", {"retry-after": "7"})]
    assert decompose(api).headers["Retry-After"] == "7"


def test_an_invalid_llm_answer_still_records_what_it_cost(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": [{"x": 1}]}))
    decompose(api)
    call = BoundaryCall.objects.get()
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (
        1200,
        300,
        Decimal("0.002700"),
    )


def test_the_teacher_answers_when_the_student_is_unsure(api, teacher_api, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    student = ScriptedStudent([Triple("Chris", "likes", "tea")], confidence=0.3)
    scripted_loader.students[version.pk] = student
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    body = decompose(api).json()
    assert body["served_by"] == "teacher"
    assert without_sources(body["triples"]) == TRIPLES
    call = BoundaryCall.objects.get()
    assert call.fallback_reason == "low_confidence"
    assert call.diagnostics["student_answer"]["confidence"] == 0.3


def test_a_confident_student_never_calls_the_teacher(api, teacher_api, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple("Chris", "prefers", "composable architectures")], confidence=0.95
    )
    body = decompose(api).json()
    assert (body["served_by"], body["model_version"], body["confidence"]) == (
        "student",
        version.pk,
        0.95,
    )
    assert teacher_api.call_count == 0


def test_a_failing_teacher_degrades_to_the_unsure_student(api, teacher_api, scripted_loader):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple("Chris", "likes", "tea")], confidence=0.3
    )
    teacher_api.side_effect = [error(500, "api_error", "Internal error")]
    response = decompose(api)
    assert response.status_code == 200
    body = response.json()
    assert (body["served_by"], body["degraded"]) == ("degraded", True)
    assert without_sources(body["triples"]) == [
        {"subject": "Chris", "predicate": "likes", "object": "tea"}
    ]
    assert BoundaryCall.objects.get().teacher_error == "server_error"


def test_a_failing_teacher_is_a_warning_every_time(api, teacher_api, scripted_loader, caplog):
    version = ModelVersionFactory(backend="scripted", is_active=True, threshold=0.8)
    scripted_loader.students[version.pk] = ScriptedStudent(
        [Triple("Chris", "likes", "tea")], confidence=0.3
    )
    teacher_api.side_effect = [error(500, "api_error", "Internal error")] * 6
    with caplog.at_level("WARNING", logger="boundary.cascade"):
        decompose(api, "Chris likes tea.")
        decompose(api, "Chris likes coffee.")
    warned = [r for r in caplog.records if r.name == "boundary.cascade"]
    assert [r.levelname for r in warned] == ["WARNING", "WARNING"]
    assert "server_error" in warned[0].getMessage()
