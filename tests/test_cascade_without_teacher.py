"""The cascade with no API key: local answers, degraded answers, and the stored unserved call."""

from __future__ import annotations

import pytest

from boundary import cascade
from boundary.models import BoundaryCall
from boundary.triples import Triple
from tests.factories import ModelVersionFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db

CHRIS = Triple("Chris", "prefers", "composable architectures")


def scripted_version(loader, student: ScriptedStudent, **fields):
    version = ModelVersionFactory(**{"backend": "scripted", "is_active": True, **fields})
    loader.students[version.pk] = student
    return version


def test_it_serves_a_confident_student_answer(scripted_loader):
    version = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    call = cascade.decompose("Chris prefers composable architectures.")
    assert (call.served_by, call.model_version, call.fallback_reason) == ("student", version, "")
    assert call.output == [CHRIS.as_dict()]
    assert call.confidence == 0.9


def test_a_student_answer_records_the_llm_cost_it_avoided(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    call = cascade.decompose("Chris prefers composable architectures.")
    assert call.avoided_cost_usd > 0
    assert call.cost_usd is None


def test_an_answer_at_exactly_the_threshold_is_accepted(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.5), threshold=0.5)
    assert cascade.decompose("Chris prefers tea.").served_by == "student"


def test_an_unsure_student_serves_degraded_when_the_llm_is_unavailable(scripted_loader):
    version = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.2))
    call = cascade.decompose("Chris prefers composable architectures.")
    assert call.served_by == "degraded"
    assert call.model_version == version
    assert (call.fallback_reason, call.teacher_error) == ("low_confidence", "no_api_key")
    assert call.avoided_cost_usd is None


def test_an_uncalibrated_version_only_serves_degraded(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=1.0), threshold=None)
    assert cascade.decompose("Chris prefers tea.").served_by == "degraded"


def test_a_version_marked_uncalibrated_never_answers_alone_even_forced_with_a_threshold(
    scripted_loader,
):
    # A version forced past the gate keeps its threshold field but says it is uncalibrated.
    metrics = {"calibration": {"calibrated": False, "threshold": None}}
    scripted_version(
        scripted_loader, ScriptedStudent([CHRIS], confidence=1.0), threshold=0.5, metrics=metrics
    )
    assert cascade.decompose("Chris prefers tea.").served_by == "degraded"


def test_with_no_model_and_no_llm_the_call_is_stored_and_unserved():
    with pytest.raises(cascade.Unserved) as raised:
        cascade.recompose([CHRIS])
    call = BoundaryCall.objects.get()
    assert raised.value.call == call
    assert (call.served_by, call.output) == ("unserved", None)
    assert (call.fallback_reason, call.teacher_error) == ("no_active_model", "no_api_key")
    assert call.input == [CHRIS.as_dict()]


def test_a_crashing_student_is_recorded_and_the_request_still_answers(scripted_loader):
    broken = ScriptedStudent(error=RuntimeError("CUDA out of memory"))
    scripted_version(scripted_loader, broken, direction="recomposition")
    with pytest.raises(cascade.Unserved):
        cascade.recompose([CHRIS])
    call = BoundaryCall.objects.get()
    assert call.fallback_reason == "student_error"
    assert "CUDA out of memory" in call.diagnostics["student_errors"][0]["error"]


def test_a_backend_without_a_loader_falls_through_like_a_broken_model():
    ModelVersionFactory(backend="quantum", is_active=True)
    with pytest.raises(cascade.Unserved):
        cascade.decompose("Chris prefers tea.")
    call = BoundaryCall.objects.get()
    assert call.fallback_reason == "student_error"
    assert "no loader" in call.diagnostics["student_errors"][0]["error"]


def test_a_version_whose_artifact_is_missing_falls_through(tmp_path):
    ModelVersionFactory(
        backend="transformers", artifact_path=str(tmp_path / "gone"), is_active=True
    )
    with pytest.raises(cascade.Unserved):
        cascade.decompose("Chris prefers tea.")
    assert BoundaryCall.objects.get().fallback_reason == "student_error"


def test_a_student_returning_the_wrong_type_is_treated_as_broken(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent(triples="not triples", confidence=0.99))
    with pytest.raises(cascade.Unserved):
        cascade.decompose("Chris prefers tea.")
    assert BoundaryCall.objects.get().fallback_reason == "student_error"


def test_the_encoder_is_asked_before_the_generator(scripted_loader):
    generator = ScriptedStudent([CHRIS], confidence=0.9)
    encoder = ScriptedStudent([CHRIS], confidence=0.9)
    scripted_version(scripted_loader, generator, kind="generative")
    encoder_version = scripted_version(scripted_loader, encoder, kind="encoder")
    call = cascade.decompose("Chris prefers tea.")
    assert call.model_version == encoder_version
    assert (encoder.calls, generator.calls) == (1, 0)


def test_an_unsure_encoder_hands_over_to_the_generator(scripted_loader):
    generator = ScriptedStudent([CHRIS], confidence=0.9)
    scripted_version(scripted_loader, ScriptedStudent([], confidence=0.1), kind="encoder")
    generator_version = scripted_version(scripted_loader, generator, kind="generative")
    call = cascade.decompose("Chris prefers tea.")
    assert (call.served_by, call.model_version) == ("student", generator_version)


def test_degraded_answers_come_from_the_most_confident_student(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([], confidence=0.1), kind="encoder")
    best = scripted_version(
        scripted_loader, ScriptedStudent([CHRIS], confidence=0.4), kind="generative"
    )
    call = cascade.decompose("Chris prefers tea.")
    assert (call.served_by, call.model_version, call.confidence) == ("degraded", best, 0.4)


def test_an_inactive_version_is_never_asked(scripted_loader):
    student = ScriptedStudent([CHRIS], confidence=0.9)
    scripted_version(scripted_loader, student, is_active=False)
    with pytest.raises(cascade.Unserved):
        cascade.decompose("Chris prefers tea.")
    assert student.calls == 0


def test_a_model_is_loaded_once_per_process(scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    for _ in range(3):
        cascade.decompose("Chris prefers tea.")
    assert scripted_loader.loads == 1


def test_a_promotion_is_picked_up_without_a_restart(scripted_loader):
    old = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    assert cascade.decompose("Chris prefers tea.").model_version == old
    old.is_active = False
    old.save()
    new = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    assert cascade.decompose("Chris prefers tea.").model_version == new


def test_the_split_is_stable_for_the_same_input(settings):
    settings.VALENCE_EVAL_FRACTION = 0.5

    def unserved(text: str) -> BoundaryCall:
        with pytest.raises(cascade.Unserved) as raised:
            cascade.decompose(text)
        return raised.value.call

    calls = [unserved(f"Sentence number {i}.") for i in range(40)]
    again = [unserved(f"Sentence number {i}.") for i in range(40)]
    assert [c.split for c in calls] == [c.split for c in again]
    assert {c.split for c in calls} == {"train", "eval"}


def test_answers_stating_one_triple_set_share_a_split(scripted_loader, settings):
    settings.VALENCE_EVAL_FRACTION = 0.5
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    calls = [cascade.decompose(f"Sentence number {i}.") for i in range(20)]
    assert len({(c.group_key, c.split) for c in calls}) == 1


def test_running_without_a_key_is_said_once_per_process_not_per_call(
    scripted_loader, caplog, monkeypatch
):
    monkeypatch.setattr(cascade, "_said_offline", False)
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.2))
    with caplog.at_level("INFO", logger="boundary.cascade"):
        for text in ("Chris prefers tea.", "Chris prefers coffee.", "Chris prefers water."):
            assert cascade.decompose(text).served_by == "degraded"
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "boundary.cascade"]
    assert said == [
        ("INFO", "no LLM key: local answers are served degraded, unanswerable calls get 503")
    ]
