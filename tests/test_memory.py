"""Remembered answers (boundary.memory): the same input again is answered from an earlier LLM or
reviewed answer, before a generative student or the LLM is asked; the real SDK answers the first."""

from __future__ import annotations

import httpx
import pytest

from boundary import cascade
from boundary.models import BoundaryCall
from boundary.triples import Triple, parse_triples
from review.metrics import Window, fallback_rate, latency
from tests.anthropic_mock import text_message, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory
from tests.scripted_student import ScriptedStudent
from training.datasets import eligible_pairs

pytestmark = pytest.mark.django_db

TEXT = "Chris prefers composable architectures and works at Valence."
TRIPLES = [
    {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"},
    {"subject": "Chris", "predicate": "worksAt", "object": "Valence"},
]
FACTS = parse_triples(TRIPLES)
WRITTEN = "Chris, who works at Valence, prefers composable architectures."


def decompose(api, text: str = TEXT):
    return api.post("/api/v1/decompose", {"text": text}, format="json")


def recompose(api, triples=TRIPLES):
    return api.post("/api/v1/recompose", {"triples": triples}, format="json")


def test_the_same_text_again_is_answered_from_memory_without_the_llm(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    first = decompose(api).json()
    again = decompose(api, "Chris prefers composable   architectures and works at Valence.")
    assert teacher_api.call_count == 1
    body = again.json()
    memory = {"stage": "memory", "version": None, "confidence": None}
    assert body["triples"] == [{**triple, "source": memory} for triple in TRIPLES]
    assert (body["served_by"], body["fallback_reason"], body["degraded"]) == ("memory", "", False)
    call = BoundaryCall.objects.get(pk=body["call_id"])
    assert call.diagnostics["memory"] == {"call": first["call_id"], "source": "teacher"}
    assert call.avoided_cost_usd > 0 and call.cost_usd is None


def test_the_same_triples_in_another_order_are_answered_from_memory(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=text_message(WRITTEN))
    recompose(api)
    body = recompose(api, list(reversed(TRIPLES))).json()
    assert (body["text"], body["served_by"]) == (WRITTEN, "memory")
    assert teacher_api.call_count == 1


def test_a_reviewers_correction_is_remembered_before_the_llms_answer():
    corrected = [{"subject": "Chris", "predicate": "likes", "object": "composable architectures"}]
    BoundaryCallFactory(input=TEXT)
    fixed = BoundaryCallFactory(input=TEXT, review_status="corrected", corrected_output=corrected)
    BoundaryCallFactory(input=TEXT)  # a newer unreviewed LLM answer does not outrank it
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.output) == ("memory", corrected)
    assert call.diagnostics["memory"] == {"call": fixed.pk, "source": "corrected"}


def test_a_rejected_answer_is_never_remembered(teacher_api):
    BoundaryCallFactory(input=TEXT, review_status="rejected")
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_an_answer_of_another_llm_model_is_not_remembered(teacher_api):
    BoundaryCallFactory(input=TEXT, llm_model="claude-opus-4-1-20250805")
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_a_students_unreviewed_answer_is_not_remembered(teacher_api):
    version = ModelVersionFactory()
    BoundaryCallFactory(input=TEXT, served_by="student", model_version=version, llm_model="")
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_the_llms_own_full_answer_is_remembered_where_it_completed_a_student(teacher_api):
    label = [{"subject": "Chris", "predicate": "worksAt", "object": "Valence"}]
    BoundaryCallFactory(input=TEXT, output=TRIPLES, diagnostics={"teacher_output": label})
    assert cascade.decompose(TEXT).output == label


def test_an_imported_reference_answers_offline(settings):
    settings.ANTHROPIC_API_KEY = ""
    BoundaryCallFactory(input=TEXT, served_by="imported", llm_model="", client=None)
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.diagnostics["memory"]["source"]) == ("memory", "imported")


def test_client_scope_remembers_only_the_askers_own_calls(settings, teacher_api):
    settings.VALENCE_MEMORY = "client"
    asker = UserFactory()
    BoundaryCallFactory(input=TEXT)  # another client's
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    assert cascade.decompose(TEXT, client=asker).served_by == "teacher"
    assert cascade.decompose(TEXT, client=asker).served_by == "memory"


def test_memory_off_always_asks_the_llm(settings, teacher_api):
    settings.VALENCE_MEMORY = "off"
    BoundaryCallFactory(input=TEXT)
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_a_sure_encoder_answers_before_memory_is_asked(scripted_loader):
    BoundaryCallFactory(input=TEXT)
    version = ModelVersionFactory(kind="encoder", backend="scripted", is_active=True)
    scripted_loader.students[version.pk] = ScriptedStudent(
        list(FACTS), confidence=0.9, triple_confidences=(0.9, 0.9), complete=0.95
    )
    call = cascade.decompose(TEXT)
    assert call.served_by == "student"
    assert [t["stage"] for t in call.diagnostics["timings"]] == ["encoder"]


def test_memory_answers_before_a_generative_student_is_asked(scripted_loader):
    BoundaryCallFactory(input=TEXT)
    student = ScriptedStudent([Triple("Chris", "knows", "Valence")], confidence=0.99)
    version = ModelVersionFactory(backend="scripted", is_active=True)
    scripted_loader.students[version.pk] = student
    call = cascade.decompose(TEXT)
    assert (call.served_by, student.calls) == ("memory", 0)


def test_a_remembered_call_teaches_nothing_new():
    BoundaryCallFactory(input=TEXT)
    cascade.decompose(TEXT)
    assert len(eligible_pairs("decomposition")) == 1


def test_dashboards_count_a_remembered_answer_as_local_and_not_a_fallback(teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))
    cascade.decompose(TEXT)
    cascade.decompose(TEXT)
    window = Window.parse("24h", "")
    assert [row["fallbacks"] for row in fallback_rate(window)] == [1]
    assert latency(window)[0]["local_p50_ms"] is not None


def test_an_answer_rejected_where_memory_served_it_is_not_served_again(teacher_api):
    BoundaryCallFactory(input=TEXT, output=TRIPLES)
    served = cascade.decompose(TEXT)
    served.review_status = "rejected"
    served.save()
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES[:1]}))
    assert cascade.decompose(TEXT).served_by == "teacher"
