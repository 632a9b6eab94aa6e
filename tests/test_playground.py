"""The playground page: the cascade's answer as the API gives it, stored as a playground call.

Bad input must be a 422 with a message a person can act on (htmx swaps 422 panels in), never a
500; a missing teacher must show the degraded or unserved answer, not crash.
"""

from __future__ import annotations

import html
import json

import httpx
import pytest
from django.contrib.auth.models import Group
from django.test import Client

from boundary.models import BoundaryCall, ModelVersion
from boundary.triples import Triple
from review.roles import REVIEWERS, STAFF
from tests.anthropic_mock import tool_message
from tests.factories import ModelVersionFactory, UserFactory
from tests.scripted_student import ScriptedLoader, ScriptedStudent

pytestmark = pytest.mark.django_db

URL = "/playground/"
TEXT = "Chris prefers composable architectures."
CHRIS = Triple("Chris", "prefers", "composable architectures")
CHRIS_JSON = json.dumps([CHRIS.as_dict()])
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(member(STAFF))
    return client


def member(group: str):
    user = UserFactory()
    user.groups.add(Group.objects.get(name=group))
    return user


def scripted_version(
    loader: ScriptedLoader, student: ScriptedStudent, **fields: object
) -> ModelVersion:
    version = ModelVersionFactory(**{"backend": "scripted", "is_active": True, **fields})
    loader.students[version.pk] = student
    return version


def decompose(client: Client, text: str = TEXT, **headers: str):
    return client.post(URL, {"direction": "decomposition", "text": text}, **headers)


def recompose(client: Client, triples: str = CHRIS_JSON, **headers: str):
    return client.post(URL, {"direction": "recomposition", "triples": triples}, **headers)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_any_signed_in_user_gets_both_directions(signed_in):
    page = page_text(signed_in.get(URL))
    assert "Text → triples" in page and "Triples → text" in page


def test_the_navigation_links_to_the_playground_once_signed_in(client, user):
    assert 'href="/playground/"' not in client.get("/").content.decode()
    client.force_login(user)
    assert 'href="/playground/"' in client.get("/").content.decode()


def test_other_methods_are_refused(signed_in):
    assert signed_in.put(URL).status_code == 405


def test_a_decomposition_shows_each_triples_stage_version_and_confidence(
    signed_in, scripted_loader
):
    version = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.875))
    response = decompose(signed_in)
    assert response.status_code == 200
    page = page_text(response)
    row = (
        "<td>Chris</td><td>prefers</td><td>composable architectures</td>\n"
        f"      <td>generative</td>\n      <td>v{version.pk}</td>\n      <td>0.875</td>"
    )
    assert row in page


def test_the_call_is_stored_for_the_user_and_marked_as_a_playground_call(
    signed_in, user, scripted_loader
):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    decompose(signed_in)
    call = BoundaryCall.objects.get()
    assert (call.origin, call.client, call.input, call.served_by) == (
        "playground",
        user,
        TEXT,
        "student",
    )


def test_api_calls_are_marked_as_api_calls(api):
    api.post("/api/v1/decompose", {"text": TEXT}, format="json")
    assert BoundaryCall.objects.get().origin == "api"


def test_a_recomposition_shows_the_text_and_who_wrote_it(signed_in, scripted_loader):
    student = ScriptedStudent(text="Chris likes composable architectures.", confidence=0.9)
    version = scripted_version(scripted_loader, student, direction="recomposition")
    page = page_text(recompose(signed_in))
    assert "Chris likes composable architectures." in page
    assert f"From generative v{version.pk}, confidence 0.900." in page


def test_triples_may_be_written_as_lists(signed_in, scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent(confidence=0.9), direction="recomposition")
    response = recompose(signed_in, '[["Chris", "prefers", "composable architectures"]]')
    assert response.status_code == 200
    assert BoundaryCall.objects.get().input == [CHRIS.as_dict()]


def test_the_stage_timings_list_every_stage_the_cascade_ran(signed_in, scripted_loader):
    encoder = scripted_version(scripted_loader, ScriptedStudent([], confidence=0.1), kind="encoder")
    generator = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    page = page_text(decompose(signed_in))
    timings = BoundaryCall.objects.get().diagnostics["timings"]
    assert [(t["stage"], t["version"], t["outcome"]) for t in timings] == [
        ("encoder", encoder.pk, "unsure"),
        ("memory", None, "miss"),  # asked before the slower stage: nothing remembered
        ("generative", generator.pk, "sure"),
    ]
    assert f"<td>encoder</td><td>v{encoder.pk}</td><td>unsure</td>" in page
    assert f"<td>generative</td><td>v{generator.pk}</td><td>sure</td>" in page


def test_the_teachers_triples_are_shown_as_the_teachers(signed_in, teacher_api):
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [CHRIS.as_dict()]})
    )
    page = page_text(decompose(signed_in))
    assert "<td>composable architectures</td>\n      <td>teacher</td>" in page
    assert "<td>teacher</td><td>–</td><td>answered</td>" in page  # its timing row


def test_without_a_teacher_an_unsure_answer_is_shown_as_degraded(signed_in, scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.2))
    response = decompose(signed_in)
    assert response.status_code == 200
    page = page_text(response)
    assert "Degraded:" in page and "<code>no_api_key</code>" in page
    assert "<td>composable architectures</td>" in page


def test_with_no_model_and_no_teacher_the_unserved_call_is_shown(signed_in):
    response = decompose(signed_in)
    assert response.status_code == 200
    page = page_text(response)
    assert "Unserved:" in page and "no local model serves decomposition" in page
    assert BoundaryCall.objects.get().served_by == "unserved"


def test_an_htmx_request_gets_only_the_result_panel(signed_in, scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    page = page_text(decompose(signed_in, **HTMX))
    assert "<header>" not in page and "Text → triples" not in page
    assert f"Call #{BoundaryCall.objects.get().pk}" in page


def test_invalid_triples_json_is_a_422_that_says_where(signed_in):
    response = recompose(signed_in, '[{"subject": "Chris",}]', **HTMX)
    assert response.status_code == 422
    expected = "This is not valid JSON: Expecting property name enclosed in double quotes at line 1"
    assert expected in page_text(response)


def test_bad_input_stores_no_call(signed_in):
    recompose(signed_in, "not json", **HTMX)
    assert not BoundaryCall.objects.exists()


def test_a_triple_with_an_empty_field_is_a_422_naming_the_field(signed_in):
    triples = json.dumps([{"subject": " ", "predicate": "prefers", "object": "tea"}])
    response = recompose(signed_in, triples, **HTMX)
    assert response.status_code == 422
    assert "triples[0].subject: Must not be empty or only whitespace." in page_text(response)


def test_empty_triples_ask_for_triples(signed_in):
    response = recompose(signed_in, "  ", **HTMX)
    assert response.status_code == 422
    assert "Write one or more triples as a JSON list" in page_text(response)


def test_json_that_is_not_a_list_is_a_422(signed_in):
    response = recompose(signed_in, json.dumps(CHRIS.as_dict()), **HTMX)
    assert response.status_code == 422
    assert "Expected a list of triples, got an object." in page_text(response)


def test_json_nested_deeper_than_the_parser_follows_is_a_422_not_a_500(signed_in):
    response = recompose(signed_in, "[" * 100_000 + "]" * 100_000, **HTMX)
    assert response.status_code == 422
    assert "This is not JSON the parser can read." in page_text(response)


def test_empty_text_is_a_422_asking_for_a_text(signed_in):
    response = decompose(signed_in, " \n ", **HTMX)
    assert response.status_code == 422
    assert "Write a text to decompose" in page_text(response)


def test_too_long_text_is_a_422_that_gives_the_limit(signed_in, settings):
    settings.VALENCE_MAX_TEXT_CHARS = 20
    response = decompose(signed_in, "x" * 21, **HTMX)
    assert response.status_code == 422
    assert "no more than 20 characters (it has 21)" in page_text(response)


def test_text_with_a_nul_character_is_a_422(signed_in):
    response = decompose(signed_in, "Chris\x00 prefers tea.", **HTMX)
    assert response.status_code == 422
    assert "Text must not contain NUL characters." in page_text(response)


def test_an_unknown_direction_is_a_422(signed_in):
    response = signed_in.post(URL, {"direction": "sideways", "text": TEXT}, **HTMX)
    assert response.status_code == 422
    assert "Choose text → triples or triples → text." in page_text(response)


def test_a_full_page_with_an_error_keeps_what_was_typed(signed_in):
    response = recompose(signed_in, '[{"subject": "Chris"')
    assert response.status_code == 422
    page = page_text(response)
    assert "<header>" in page and "This is not valid JSON" in page
    assert '[{"subject": "Chris"</textarea>' in page


def test_the_answer_can_be_sent_back_the_other_way(signed_in, scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    page = decompose(signed_in, **HTMX).content.decode()
    assert '<input type="hidden" name="direction" value="recomposition">' in page
    assert html.escape(json.dumps([CHRIS.as_dict()], indent=2)) in page
    assert "Recompose these triples" in page


def test_staff_see_what_each_active_version_would_have_said(staff_client, scripted_loader):
    encoder = scripted_version(
        scripted_loader,
        ScriptedStudent([Triple("Chris", "likes", "tea")], confidence=0.3),
        kind="encoder",
    )
    generator = scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=0.9))
    page = page_text(decompose(staff_client))
    assert "What each active version would have said" in page
    assert f'<tr data-version="{encoder.pk}">' in page and "Chris · likes · tea" in page
    assert f'<tr data-version="{generator.pk}">' in page
    assert "Chris · prefers · composable architectures" in page


def test_the_comparison_asks_each_version_again_but_stores_no_call(staff_client, scripted_loader):
    student = ScriptedStudent([CHRIS], confidence=0.9)
    scripted_version(scripted_loader, student)
    decompose(staff_client)
    assert student.calls == 2  # once by the cascade, once for the comparison
    assert BoundaryCall.objects.count() == 1


def test_reviewers_do_not_get_the_comparison(client, scripted_loader):
    client.force_login(member(REVIEWERS))
    student = ScriptedStudent([CHRIS], confidence=0.9)
    scripted_version(scripted_loader, student)
    page = page_text(decompose(client))
    assert "What each active version would have said" not in page
    assert student.calls == 1


def test_a_broken_version_shows_its_error_in_the_comparison(staff_client, scripted_loader):
    broken = ScriptedStudent(error=RuntimeError("CUDA out of memory"))
    scripted_version(scripted_loader, broken, direction="recomposition")
    response = recompose(staff_client)
    assert response.status_code == 200
    assert "failed: RuntimeError: CUDA out of memory" in page_text(response)


def test_an_uncalibrated_version_is_shown_never_answering_alone(staff_client, scripted_loader):
    scripted_version(scripted_loader, ScriptedStudent([CHRIS], confidence=1.0), threshold=None)
    page = page_text(decompose(staff_client))
    assert "<td>uncalibrated</td>\n      <td>no</td>" in page


def test_a_remembered_answer_says_which_earlier_call_it_repeats(signed_in, teacher_api):
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [CHRIS.as_dict()]})
    )
    decompose(signed_in)
    page = decompose(signed_in).content.decode()
    first = BoundaryCall.objects.order_by("pk").first()
    assert f"Answered from memory: the same input was answered before (call #{first.pk}" in page
