"""Query by committee: where the encoder and the generative decomposer agree, the agreed answer
is served locally, once held-out evidence shows agreement reaches the target."""

from __future__ import annotations

import httpx
import pytest

from boundary import cascade
from boundary.models import committee_shows_target
from boundary.registry import gate_verdict
from boundary.triples import Triple
from tests.anthropic_mock import tool_message
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent
from training.committee import committee_promise
from training.evaluation import Example, Prediction

pytestmark = pytest.mark.django_db

TEXT = "Chris prefers composable architectures and works at Valence."
PREFERS = Triple("Chris", "prefers", "composable architectures")
WORKS_AT = Triple("Chris", "worksAt", "Valence")
KNOWS = Triple("Chris", "knows", "composable architectures")


def promise(partner: int, *, agreed: int = 60, right: int = 60, target: float = 0.95) -> dict:
    return {
        "partner": partner,
        "examples": 100,
        "agreed": agreed,
        "right": right,
        "agreement": right / agreed,
        "agreement_interval": [0.9, 1.0],
        "target": target,
    }


def committee(loader, encoder_answer, generative_answer, *, passes: bool = True):
    """An unsure encoder, then an uncalibrated generative decomposer with a committee promise."""
    encoder = ModelVersionFactory(kind="encoder", backend="scripted", is_active=True, threshold=0.9)
    loader.students[encoder.pk] = ScriptedStudent(list(encoder_answer), confidence=0.4)
    generative = ModelVersionFactory(
        kind="generative",
        backend="scripted",
        is_active=True,
        threshold=None,
        metrics={"committee": promise(encoder.pk, right=60 if passes else 55)},
    )
    loader.students[generative.pk] = ScriptedStudent(list(generative_answer), confidence=0.3)
    return encoder, generative


def test_an_answer_both_students_give_is_served_locally(scripted_loader, teacher_api):
    _, generative = committee(scripted_loader, [PREFERS, WORKS_AT], [WORKS_AT, PREFERS])
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.model_version_id) == ("student", generative.pk)
    assert {s["stage"] for s in call.triple_sources} == {"committee"}
    assert not teacher_api.called


def test_the_committee_answer_carries_its_measured_agreement(scripted_loader, teacher_api):
    encoder, generative = committee(scripted_loader, [PREFERS], [PREFERS])
    call = cascade.decompose(TEXT)
    assert call.confidence == 1.0
    assert call.diagnostics["committee"] == {"versions": [encoder.pk, generative.pk]}


def test_students_that_disagree_ask_the_teacher(scripted_loader, teacher_api):
    committee(scripted_loader, [PREFERS], [KNOWS])
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [PREFERS.as_dict()]})
    )
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_a_committee_that_missed_the_target_on_held_out_data_does_not_answer(
    scripted_loader, teacher_api
):
    committee(scripted_loader, [PREFERS], [PREFERS], passes=False)
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [PREFERS.as_dict()]})
    )
    assert cascade.decompose(TEXT).served_by == "teacher"


def test_an_empty_agreement_is_not_an_answer(scripted_loader, teacher_api):
    committee(scripted_loader, [], [])
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [PREFERS.as_dict()]})
    )
    assert cascade.decompose(TEXT).served_by == "teacher"


class Partner:
    def __init__(self, answers: dict[str, list[Triple]]) -> None:
        self.answers = answers

    def decompose(self, text: str):
        return ScriptedStudent(self.answers[text]).decompose(text)


def test_enough_agreed_answers_at_the_target_pass(settings):
    settings.VALENCE_COMMITTEE_MIN_AGREED = 5
    examples = [Example(source="text", references=((PREFERS,),))] * 5
    predictions = [Prediction(output=[PREFERS])] * 5
    measured = committee_promise(
        predictions, examples, Partner({"text": [PREFERS]}), partner_id=7, target=0.95
    )
    assert (measured["agreement"], committee_shows_target(measured)) == (1.0, True)


def test_the_promise_counts_agreed_answers_and_how_many_are_right():
    examples = [Example(source=f"text {n}", references=((PREFERS,),)) for n in range(3)]
    predictions = [Prediction(output=[PREFERS]), Prediction(output=[KNOWS]), Prediction()]
    partner = Partner({"text 0": [PREFERS], "text 1": [KNOWS], "text 2": [PREFERS]})
    measured = committee_promise(predictions, examples, partner, partner_id=7, target=0.95)
    assert (measured["agreed"], measured["right"], measured["partner"]) == (2, 1, 7)
    assert committee_shows_target(measured) is False


def test_too_few_agreed_answers_do_not_pass_even_when_all_are_right(settings):
    settings.VALENCE_COMMITTEE_MIN_AGREED = 5
    examples = [Example(source="text", references=((PREFERS,),))] * 4
    predictions = [Prediction(output=[PREFERS])] * 4
    measured = committee_promise(
        predictions, examples, Partner({"text": [PREFERS]}), partner_id=7, target=0.95
    )
    assert (measured["agreement"], committee_shows_target(measured)) == (1.0, False)


def test_the_gate_accepts_an_uncalibrated_version_whose_committee_passes(scripted_loader):
    encoder = ModelVersionFactory(kind="encoder", is_active=True)
    candidate = ModelVersionFactory(
        kind="generative",
        status="ready",
        threshold=None,
        metrics={"headline": 0.8, "committee": promise(encoder.pk)},
    )
    assert gate_verdict(candidate).passed, gate_verdict(candidate).reasons


def test_the_gate_refuses_a_committee_whose_partner_is_no_longer_active(scripted_loader):
    encoder = ModelVersionFactory(kind="encoder", is_active=False)
    candidate = ModelVersionFactory(
        kind="generative",
        status="ready",
        threshold=None,
        metrics={"headline": 0.8, "committee": promise(encoder.pk)},
    )
    assert gate_verdict(candidate).refused_only_for_calibration


def test_a_committee_answer_is_counted_under_its_own_stage(scripted_loader, teacher_api):
    from tests.test_metrics import delta

    _, generative = committee(scripted_loader, [PREFERS], [PREFERS])
    grown = delta(
        "valence_cascade_calls_total",
        direction="decomposition",
        served_by="student",
        stage="committee",
        version=str(generative.pk),
        fallback_reason="",
    )
    cascade.decompose(TEXT)
    assert grown() == 1


def test_a_committee_measured_under_a_lower_floor_is_held_back_by_a_higher_one(settings):
    settings.VALENCE_COMMITTEE_MIN_AGREED = 61
    version = ModelVersionFactory(kind="generative", metrics={"committee": promise(1)})
    assert version.committee_partner is None
