"""Student against teacher in the review console (review/compare.py), and the round trip.

The stored records are made by the real cascade and the real live audit (the LLM faked at the
HTTP layer), so a renamed diagnostics key breaks these tests rather than the console.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
import respx
from django.contrib.auth.models import Group
from django.test import Client

from boundary import cascade
from boundary.models import BoundaryCall, ModelVersion
from boundary.triples import Triple
from review import compare
from review.roles import REVIEWERS
from tests.anthropic_mock import error, text_message, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory
from tests.scripted_student import ScriptedLoader, ScriptedStudent
from training.audit import do_audit_pass
from training.evaluation import round_trip
from training.models import LiveAudit

TEXT = "Alan Bean, born in Wheeler, Texas on March 15, 1932, was a test pilot."
PLACE = Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")
BORN = Triple("Alan_Bean", "birthDate", '"1932-03-15"')
PILOT = Triple("Alan_Bean", "occupation", "Test_pilot")
CHRIS = [
    Triple("Chris", "prefers", "composable architectures"),
    Triple("Chris", "worksAt", "Valence"),
]
HATES = Triple("Chris", "hates", "monoliths")


def as_json(triples: Sequence[Triple]) -> list[dict[str, str]]:
    return [t.as_dict() for t in triples]


def states(comparison: compare.TripleComparison) -> list[str]:
    return [compare._state(pair) for pair in comparison.pairs]


def active(loader: ScriptedLoader, student: ScriptedStudent, **fields: object) -> ModelVersion:
    version = ModelVersionFactory(
        **{"backend": "scripted", "is_active": True, "threshold": 0.8, **fields}
    )
    loader.students[version.pk] = student
    return version


def teacher_triples(route: respx.Route, triples: Sequence[Triple]) -> None:
    route.return_value = httpx.Response(200, json=tool_message({"triples": as_json(triples)}))


@pytest.fixture
def audit_on(teacher_api: respx.Route, settings) -> respx.Route:
    """Every local answer sampled by the live audit, a roomy cap, no demotion."""
    settings.VALENCE_AUDIT_RATE = 1.0
    settings.VALENCE_AUDIT_DAILY_USD = 10.0
    settings.VALENCE_AUDIT_MIN_SAMPLES = 1000
    return teacher_api


def local_call(version: ModelVersion, **fields: object) -> BoundaryCall:
    defaults = {
        "served_by": "student",
        "model_version": version,
        "direction": version.direction,
        "confidence": 0.9,
        "client": None,
    }
    return BoundaryCallFactory(**{**defaults, **fields})


# The diff itself: Django-free.


def test_a_fact_both_state_in_the_same_words_is_the_same():
    [pair] = compare.align([PLACE], [Triple("alan bean", "birthPlace", "Wheeler, Texas")])
    assert pair.matched and not pair.reworded


def test_a_date_written_differently_is_the_same_fact_worded_differently():
    [pair] = compare.align([BORN], [Triple("Alan Bean", "birthDate", "March 15, 1932")])
    assert pair.matched and pair.reworded


def test_another_predicate_is_another_fact_on_each_side():
    pairs = compare.align([PLACE], [Triple("Alan_Bean", "deathPlace", "Wheeler,_Texas")])
    assert [(p.left is not None, p.right is not None) for p in pairs] == [
        (True, False),
        (False, True),
    ]


def test_a_fact_stated_twice_is_paired_twice_rather_than_shown_as_new():
    pairs = compare.align([BORN], [BORN, Triple("Alan Bean", "birthDate", "March 15, 1932")])
    assert [p.matched for p in pairs] == [True, True]


def test_the_rows_agree_with_the_round_trip_counts():
    expected = [PLACE, BORN, PILOT]
    recovered = [PLACE, Triple("Alan Bean", "birthDate", "March 15, 1932"), HATES]
    pairs = compare.align(expected, recovered)
    trip = round_trip(expected, recovered)
    assert sum(p.left is not None and p.matched for p in pairs) == trip.recalled
    assert sum(p.right is not None and p.matched for p in pairs) == trip.supported


def test_the_word_diff_marks_only_the_words_one_side_lacks():
    student, teacher = compare.word_diff("Chris likes tea.", "Chris prefers tea.")
    assert [(s.text, s.changed) for s in student] == [
        ("Chris", False),
        ("likes", True),
        ("tea.", False),
    ]
    assert [(s.text, s.changed) for s in teacher] == [
        ("Chris", False),
        ("prefers", True),
        ("tea.", False),
    ]


# Where each side's answer comes from.


@pytest.mark.django_db
def test_each_unsure_stage_is_compared_with_the_teachers_own_answer(teacher_api, scripted_loader):
    encoder = active(
        scripted_loader,
        ScriptedStudent(
            [PLACE, HATES], confidence=0.3, triple_confidences=(0.95, 0.3), complete=0.99
        ),
        kind="encoder",
    )
    # The served output keeps the encoder's wording of the place; the teacher's own differs.
    teacher_triples(teacher_api, [Triple("Alan Bean", "birthPlace", "Wheeler, Texas, USA"), PILOT])
    call = cascade.decompose(TEXT)

    [comparison] = compare.comparisons(call)

    assert comparison.student.who == f"v{encoder.pk} (encoder)"
    assert states(comparison) == ["reworded", "only_student", "only_teacher"]
    assert [p.left_confidence for p in comparison.pairs[:2]] == [0.95, 0.3]


@pytest.mark.django_db
def test_the_most_confident_unsure_student_is_compared_with_the_served_answer(
    teacher_api, scripted_loader
):
    generative = active(scripted_loader, ScriptedStudent([PLACE, HATES], confidence=0.4))
    teacher_triples(teacher_api, [PLACE, PILOT])
    call = cascade.decompose(TEXT)

    [comparison] = compare.comparisons(call)

    assert (comparison.student.who, comparison.student.confidence) == (
        f"v{generative.pk} (generative)",
        0.4,
    )
    assert comparison.teacher.source == "the served answer"
    assert states(comparison) == ["same", "only_student", "only_teacher"]


@pytest.mark.django_db
def test_a_student_noted_per_stage_is_not_compared_twice(teacher_api, scripted_loader):
    active(
        scripted_loader,
        ScriptedStudent([PLACE], confidence=0.3, triple_confidences=(0.3,), complete=0.3),
        kind="encoder",
    )
    teacher_triples(teacher_api, [PLACE])
    call = cascade.decompose(TEXT)
    assert "student_answer" in call.diagnostics and "stages" in call.diagnostics
    assert len(compare.comparisons(call)) == 1


@pytest.mark.django_db
def test_an_audited_local_answer_is_compared_with_the_audits_teacher_answer(audit_on):
    version = ModelVersionFactory(is_active=True)
    call = local_call(
        version,
        output=as_json(CHRIS),
        triple_sources=[
            {"stage": "generative", "version": version.pk, "confidence": 0.91},
            {"stage": "generative", "version": version.pk, "confidence": 0.92},
        ],
    )
    teacher_triples(audit_on, [CHRIS[0], HATES])
    do_audit_pass()
    audit = LiveAudit.objects.get(call=call)

    [comparison] = compare.comparisons(call)

    assert (
        comparison.teacher.source == f"asked again by the live audit, call #{audit.teacher_call_id}"
    )
    assert states(comparison) == ["same", "only_student", "only_teacher"]
    assert [p.left_confidence for p in comparison.pairs[:2]] == [0.91, 0.92]


@pytest.mark.django_db
def test_the_audits_own_call_compares_the_audited_answer_with_its_own(audit_on):
    call = local_call(ModelVersionFactory(is_active=True), output=as_json(CHRIS))
    teacher_triples(audit_on, [HATES])
    do_audit_pass()
    teacher_call = LiveAudit.objects.get(call=call).teacher_call

    [comparison] = compare.comparisons(teacher_call)

    assert comparison.student.source == f"its served answer to call #{call.pk}"
    assert states(comparison) == ["only_student", "only_student", "only_teacher"]


@pytest.mark.django_db
def test_a_local_answer_nobody_audited_has_nothing_to_compare():
    call = local_call(ModelVersionFactory(is_active=True), output=as_json(CHRIS))
    assert compare.comparisons(call) == []


@pytest.mark.django_db
def test_a_degraded_answer_has_no_teacher_answer_to_compare(teacher_api, scripted_loader):
    active(scripted_loader, ScriptedStudent([PLACE], confidence=0.4))
    teacher_api.side_effect = [error(500, "api_error", "Internal error")]
    call = cascade.decompose(TEXT)
    assert call.served_by == "degraded"
    assert compare.comparisons(call) == []


@pytest.mark.django_db
def test_a_recompositions_unsure_text_is_compared_word_by_word(teacher_api, scripted_loader):
    active(
        scripted_loader,
        ScriptedStudent(text="Chris likes composable architectures.", confidence=0.2),
        direction="recomposition",
    )
    teacher_api.return_value = httpx.Response(
        200, json=text_message("Chris prefers composable architectures.")
    )
    call = cascade.recompose(CHRIS[:1])

    [comparison] = compare.comparisons(call)

    assert comparison.kind == "text"
    assert [s.text for s in comparison.student_segments if s.changed] == ["likes"]
    assert [s.text for s in comparison.teacher_segments if s.changed] == ["prefers"]


@pytest.mark.django_db
def test_malformed_diagnostics_leave_out_what_cannot_be_read():
    call = BoundaryCallFactory(
        output=as_json([PLACE]),
        diagnostics={
            "student_answer": {"version": "?", "output": [{"subject": 1}, PLACE.as_dict()]},
            "stages": ["junk", {"version": None, "threshold": None, "triples": None}],
        },
    )
    stage, best = compare.comparisons(call)
    assert stage.pairs[0].left is None and "uncalibrated" in stage.student.source
    assert best.student.who == "a local model" and states(best) == ["same"]


# The round trip of a recomposition.


@pytest.mark.django_db
def test_the_round_trip_uses_the_live_audits_decomposition(audit_on):
    version = ModelVersionFactory(is_active=True, direction="recomposition")
    call = local_call(
        version,
        input=as_json(CHRIS),
        output="Chris, who hates monoliths, prefers composable architectures.",
    )
    teacher_triples(audit_on, [CHRIS[0], HATES])
    do_audit_pass()

    view = compare.round_trip_view(call)

    assert view is not None and "live audit" in view.recovered_by
    assert [(p.left, p.right) for p in view.pairs] == [
        (CHRIS[0], CHRIS[0]),
        (CHRIS[1], None),  # missing
        (None, HATES),  # extra
    ]
    assert (view.trip.recalled, view.trip.supported, view.trip.agrees) == (1, 1, False)


@pytest.mark.django_db
def test_without_an_audit_the_active_local_decomposer_is_run_and_nothing_is_stored(
    scripted_loader,
):
    decomposer = active(scripted_loader, ScriptedStudent(CHRIS, confidence=0.9), kind="encoder")
    call = local_call(
        ModelVersionFactory(direction="recomposition"),
        input=as_json(CHRIS),
        output="Chris prefers composable architectures at Valence.",
    )
    stored = BoundaryCall.objects.count()

    view = compare.round_trip_view(call)

    assert view is not None and view.recovered_by.startswith(f"v{decomposer.pk} (encoder)")
    assert view.trip is not None and view.trip.agrees
    assert scripted_loader.students[decomposer.pk].calls == 1
    assert BoundaryCall.objects.count() == stored


@pytest.mark.django_db
def test_without_any_decomposer_the_round_trip_says_so():
    call = BoundaryCallFactory(direction="recomposition", input=as_json(CHRIS), output="Chris.")
    view = compare.round_trip_view(call)
    assert view is not None and view.trip is None
    assert view.unavailable.startswith("No decomposer is available")


@pytest.mark.django_db
def test_a_broken_decomposer_is_reported_instead_of_breaking_the_console(scripted_loader):
    active(scripted_loader, ScriptedStudent(error=RuntimeError("model file missing")))
    call = BoundaryCallFactory(direction="recomposition", input=as_json(CHRIS), output="Chris.")
    view = compare.round_trip_view(call)
    assert view is not None and "RuntimeError: model file missing" in view.unavailable


@pytest.mark.django_db
def test_the_audits_decomposition_of_a_local_text_shows_that_texts_round_trip(audit_on):
    version = ModelVersionFactory(is_active=True, direction="recomposition")
    call = local_call(
        version, input=as_json(CHRIS), output="Chris prefers composable architectures."
    )
    teacher_triples(audit_on, [CHRIS[0]])
    do_audit_pass()
    teacher_call = LiveAudit.objects.get(call=call).teacher_call

    view = compare.round_trip_view(teacher_call)

    assert view is not None and f"call #{call.pk}" in view.recovered_by
    assert (view.trip.expected, view.trip.recalled) == (2, 1)


@pytest.mark.django_db
def test_a_decomposition_has_no_round_trip():
    assert compare.round_trip_view(BoundaryCallFactory()) is None


# In the console.


@pytest.fixture
def rita(client: Client):
    user = UserFactory(username="rita")
    user.groups.add(Group.objects.get(name=REVIEWERS))
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_the_console_marks_differences_with_words_not_colour_alone(client, rita):
    call = BoundaryCallFactory(
        output=as_json([PLACE, PILOT]),
        fallback_reason="low_confidence",
        diagnostics={
            "student_answer": {"version": 7, "confidence": 0.3, "output": as_json([PLACE, HATES])}
        },
    )
    html = client.get(f"/review/{call.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Student and teacher, side by side" in html
    assert '<td class="mark">− only student</td>' in html
    assert '<td class="mark">+ only teacher</td>' in html
    assert '<td class="mark">= same</td>' in html


@pytest.mark.django_db
def test_the_console_shows_a_recompositions_round_trip(client, rita, scripted_loader):
    active(scripted_loader, ScriptedStudent([CHRIS[0], HATES]), kind="encoder")
    call = BoundaryCallFactory(direction="recomposition", input=as_json(CHRIS), output="Chris...")
    html = client.get(f"/review/{call.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-round-trip="differs"' in html
    for mark in ("✓ recalled", "✗ missing", "✓ supported", "+ extra"):
        assert mark in html
