"""The triple-level cascade: encoder → generative student → teacher, each stage answering."""

from __future__ import annotations

import httpx
import pytest

from boundary import cascade
from boundary.triples import Triple
from tests.anthropic_mock import tool_message
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent
from training.datasets import eligible_pairs

pytestmark = pytest.mark.django_db

TEXT = "Alan Bean, born in Wheeler, Texas on March 15, 1932, was a test pilot."
BIRTH_PLACE = Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")
BIRTH_DATE = Triple("Alan_Bean", "birthDate", '"1932-03-15"')
OCCUPATION = Triple("Alan_Bean", "occupation", "Test_pilot")


def stage(loader, kind: str, student: ScriptedStudent, threshold: float = 0.8):
    version = ModelVersionFactory(
        kind=kind, backend="scripted", is_active=True, threshold=threshold
    )
    loader.students[version.pk] = student
    return version


def encoder(triples, confidences, complete=0.99):
    return ScriptedStudent(
        list(triples),
        confidence=min([complete, *confidences]),
        triple_confidences=tuple(confidences),
        complete=complete,
    )


def sources(call):
    return [(s["stage"], s["version"]) for s in call.triple_sources]


def test_a_sure_and_complete_encoder_answers_alone(scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.9]))
    gen = ScriptedStudent([OCCUPATION])
    stage(scripted_loader, "generative", gen)
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.model_version) == ("student", enc)
    assert sources(call) == [("encoder", enc.pk), ("encoder", enc.pk)]
    assert gen.calls == 0


def test_the_generative_stage_fills_in_around_the_sure_encoder_triples(scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    # The generative student restates the kept fact in other words, and adds two more.
    restated = Triple("Alan_Bean", "birthPlace", "Wheeler, Texas, USA")
    gen = stage(
        scripted_loader,
        "generative",
        ScriptedStudent([restated, BIRTH_DATE, OCCUPATION], confidence=0.9),
    )
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.model_version) == ("student", gen)
    assert call.output == [t.as_dict() for t in (BIRTH_PLACE, BIRTH_DATE, OCCUPATION)]
    assert sources(call) == [("encoder", enc.pk), ("generative", gen.pk), ("generative", gen.pk)]
    assert call.confidence == 0.9


def test_the_teacher_replaces_only_the_uncertain_part(teacher_api, scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    stage(scripted_loader, "generative", ScriptedStudent([OCCUPATION], confidence=0.2))
    teacher_says = [
        {"subject": "Alan Bean", "predicate": "birthPlace", "object": "Wheeler, Texas"},
        {"subject": "Alan Bean", "predicate": "birthDate", "object": "March 15, 1932"},
    ]
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": teacher_says}))
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.fallback_reason) == ("teacher", "low_confidence")
    assert call.output == [BIRTH_PLACE.as_dict(), teacher_says[1]]
    assert sources(call) == [("encoder", enc.pk), ("teacher", None)]
    assert call.diagnostics["teacher_output"] == teacher_says


def test_a_version_calibrated_on_whole_answers_keeps_no_triple_of_an_unsure_answer(
    teacher_api, scripted_loader
):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    enc.metrics = {"calibration": {"calibrated": True, "threshold": 0.8, "per_triple": False}}
    enc.save()
    teacher_says = [BIRTH_PLACE.as_dict(), BIRTH_DATE.as_dict(), OCCUPATION.as_dict()]
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": teacher_says}))
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.output) == ("teacher", teacher_says)
    assert sources(call) == [("teacher", None)] * 3


def test_an_incomplete_encoder_answer_falls_through_even_when_its_triples_are_sure(
    teacher_api, scripted_loader
):
    """A fact whose predicate the encoder never saw can only show up as missing."""
    stage(scripted_loader, "encoder", encoder([BIRTH_PLACE], [0.99], complete=0.2))
    pet = {"subject": "Alan_Bean", "predicate": "hasPet", "object": "Rex"}
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [BIRTH_PLACE.as_dict(), pet]})
    )
    call = cascade.decompose(TEXT)
    assert call.output == [BIRTH_PLACE.as_dict(), pet]
    assert [s["stage"] for s in call.triple_sources] == ["encoder", "teacher"]


def test_the_unsure_encoder_stage_is_kept_for_review(teacher_api, scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [BIRTH_DATE.as_dict()]})
    )
    call = cascade.decompose(TEXT)
    [noted] = call.diagnostics["stages"]
    assert noted["version"] == enc.pk
    assert [t["confidence"] for t in noted["triples"]] == [0.95, 0.3]


def test_an_uncalibrated_encoder_stage_is_stored_with_a_null_threshold(
    teacher_api, scripted_loader
):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE], [0.95]), threshold=None)
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [BIRTH_PLACE.as_dict()]})
    )
    call = cascade.decompose(TEXT)
    call.refresh_from_db()  # JSON has no infinity: the row must save and read back
    assert call.diagnostics["stages"] == [
        {**call.diagnostics["stages"][0], "version": enc.pk, "threshold": None}
    ]


def test_a_mixed_answer_trains_on_the_teachers_own_triples(teacher_api, scripted_loader):
    stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    teacher_says = [BIRTH_DATE.as_dict(), OCCUPATION.as_dict()]
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": teacher_says}))
    call = cascade.decompose(TEXT)
    [pair] = [p for p in eligible_pairs("decomposition") if p.call_id == call.pk]
    assert pair.target == (BIRTH_DATE, OCCUPATION)


def test_a_failing_teacher_serves_the_best_local_answer_degraded(scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.model_version) == ("degraded", enc)
    assert sources(call) == [("encoder", enc.pk), ("encoder", enc.pk)]


def test_the_api_says_which_stage_produced_each_triple(api, teacher_api, scripted_loader):
    enc = stage(scripted_loader, "encoder", encoder([BIRTH_PLACE, BIRTH_DATE], [0.95, 0.3]))
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [BIRTH_DATE.as_dict()]})
    )
    body = api.post("/api/v1/decompose", {"text": TEXT}, format="json").json()
    assert [t["source"] for t in body["triples"]] == [
        {"stage": "encoder", "version": enc.pk, "confidence": 0.95},
        {"stage": "teacher", "version": None, "confidence": None},
    ]


def test_per_triple_confidences_must_match_the_triples(scripted_loader, teacher_api):
    broken = ScriptedStudent([BIRTH_PLACE], confidence=0.9, triple_confidences=(0.9, 0.9))
    stage(scripted_loader, "encoder", broken)
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [BIRTH_PLACE.as_dict()]})
    )
    call = cascade.decompose(TEXT)
    assert (call.served_by, call.fallback_reason) == ("teacher", "student_error")


@pytest.mark.parametrize(
    ("kept", "offered", "dropped"),
    [
        (BIRTH_DATE, Triple("Alan Bean", "birthDate", "March 15, 1932"), True),
        (BIRTH_PLACE, Triple("Alan_Bean", "birthPlace", "Wheeler"), True),
        (BIRTH_PLACE, Triple("Alan_Bean", "deathPlace", "Wheeler,_Texas"), False),
        (Triple("Dish", "ingredient", "Rice"), Triple("Dish", "ingredient", "Beans"), False),
    ],
)
def test_merging_drops_only_restatements_of_kept_facts(kept, offered, dropped):
    first = cascade._Sourced(kept, "encoder", 1, 0.9)
    second = cascade._Sourced(offered, "teacher", None, None)
    merged = cascade.merge_triples([first], [second])
    assert (len(merged) == 1) is dropped
