"""Hostile input at every boundary gets a clear 4xx, never a 500; valid input still works.

Each family here once reached the database or an encoder unchecked: UTC offsets PostgreSQL
cannot store, datetimes that overflow when converted to UTC, JSON nested past the parser's
recursion limit, lone UTF-16 surrogates and NUL characters (which neither UTF-8 nor a
PostgreSQL text value can hold), and review console filters. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.contrib.auth.models import Group
from django.utils.timezone import override
from rest_framework.test import APIClient

from boundary.api import CallPagination
from boundary.models import BoundaryCall, VersionEvent
from review import queue
from review.roles import REVIEWERS, STAFF
from tests.anthropic_mock import text_message, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db

TRIPLE = {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}
NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DATE_FILTERS = ["created_after", "created_before"]
# A lone high and a lone low surrogate: valid JSON escapes, but not characters (no UTF-8 form).
SURROGATES = ["\ud800", "\udfff"]


def post(api: APIClient, path: str, body: object) -> tuple[int, dict]:
    """`body` as JSON text: json.dumps writes a lone surrogate as the escape "\\ud800"."""
    response = api.post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def post_raw(api: APIClient, path: str, raw: str) -> tuple[int, dict]:
    response = api.post(path, data=raw, content_type="application/json")
    return response.status_code, response.json()


def call_at(user, when: datetime = NOON, **fields) -> BoundaryCall:
    call = BoundaryCallFactory(client=user, **fields)
    BoundaryCall.objects.filter(pk=call.pk).update(created_at=when)  # auto_now_add ignores it
    return call


def listed(api: APIClient, **query: str) -> list[int]:
    response = api.get("/api/v1/calls", query)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def assert_invalid(response, field: str) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error
    assert error["message"].startswith(f"{field}: ")
    return error


# --- The calls list: date filters, page size, NUL in any filter ---------------------------


@pytest.mark.parametrize("minutes", [16 * 60, -16 * 60, 23 * 60 + 59, -(23 * 60 + 59)])
def test_a_utc_offset_beyond_postgresql_range_is_converted_not_a_500(api, user, minutes):
    call = call_at(user)
    # The instant NOON written with an offset PostgreSQL rejects (it allows at most ±15:59).
    offset = timezone(timedelta(minutes=minutes))
    at_noon = NOON.astimezone(offset).isoformat(timespec="seconds")
    assert listed(api, created_after=at_noon) == [call.pk]
    assert listed(api, created_before=at_noon) == []


@pytest.mark.parametrize("name", DATE_FILTERS)
def test_an_aware_datetime_filters_by_its_instant_in_utc(api, user, name):
    call = call_at(user)
    # 13:00 at +01:00 is noon UTC: created_after includes it (>=), created_before excludes it (<).
    found = listed(api, **{name: "2026-01-01T13:00:00+01:00"})
    assert found == ([call.pk] if name == "created_after" else [])


@pytest.mark.parametrize("name", DATE_FILTERS)
@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"],
    ids=["overflows-utc", "underflows-utc"],
)
def test_a_datetime_that_cannot_be_represented_in_utc_is_a_400_naming_the_parameter(
    api, name, value
):
    error = assert_invalid(api.get("/api/v1/calls", {name: value}), name)
    assert "UTC" in error["fields"][name][0]


@pytest.mark.parametrize("name", DATE_FILTERS)
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_the_extreme_utc_datetimes_are_valid_filters(api, user, name, value):
    call = call_at(user)
    expected = {
        ("created_after", "0001-01-01T00:00:00Z"): [call.pk],
        ("created_before", "9999-12-31T23:59:59Z"): [call.pk],
    }
    assert listed(api, **{name: value}) == expected.get((name, value), [])


@pytest.mark.parametrize("name", DATE_FILTERS)
@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+24:00", "null", "\x00", " "]
)
def test_a_malformed_date_filter_is_a_400_naming_the_parameter(api, name, value):
    assert_invalid(api.get("/api/v1/calls", {name: value}), name)


@pytest.mark.parametrize("name", DATE_FILTERS)
def test_an_empty_date_filter_is_ignored(api, user, name):
    call = call_at(user)
    assert listed(api, **{name: ""}) == [call.pk]


@pytest.mark.parametrize("value", ["null", "abc", "0", "-1", "1.5", "\x00", " "])
def test_an_invalid_page_size_is_a_400_naming_the_parameter(api, value):
    assert_invalid(api.get("/api/v1/calls", {"page_size": value}), "page_size")


def test_an_empty_page_size_means_the_default(api, user, monkeypatch):
    monkeypatch.setattr(CallPagination, "page_size", 2)
    BoundaryCallFactory.create_batch(3, client=user)
    assert len(listed(api, page_size="")) == 2


@pytest.mark.parametrize("value", ["3", "0003", "9" * 50])
def test_a_page_size_over_the_maximum_is_capped(api, user, monkeypatch, value):
    monkeypatch.setattr(CallPagination, "max_page_size", 2)
    BoundaryCallFactory.create_batch(3, client=user)
    assert len(listed(api, page_size=value)) == 2


@pytest.mark.parametrize(
    "name", ["direction", "served_by", "model_version", "review_status", "split"]
)
def test_a_nul_in_a_calls_filter_is_a_400_naming_the_parameter(api, name):
    assert_invalid(api.get("/api/v1/calls", {name: "a\x00b"}), name)


@pytest.mark.parametrize("name", ["direction", "kind", "status", "is_active"])
def test_a_nul_in_a_models_filter_is_a_400_naming_the_parameter(api, name):
    assert_invalid(api.get("/api/v1/models", {name: "a\x00b"}), name)


def test_a_model_version_id_beyond_the_database_integer_range_is_a_400(api):
    assert_invalid(api.get("/api/v1/calls", {"model_version": "9" * 30}), "model_version")


# --- JSON bodies nested past the parser's limit ----------------------------------------------

JSON_ENDPOINTS = ["/api/v1/decompose", "/api/v1/recompose", "/api/v1/calls/{pk}/feedback"]
DEEP = 5000


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        '{"text": ' + "[" * DEEP + "]" * DEEP + "}",
    ],
    ids=["lists", "objects", "inside-a-field"],
)
def test_json_nested_past_the_recursion_limit_is_malformed_json_not_a_500(api, user, path, raw):
    call = BoundaryCallFactory(client=user)
    status, body = post_raw(api, path.format(pk=call.pk), raw)
    assert status == 400
    assert body["error"]["code"] == "malformed_json"
    assert BoundaryCall.objects.count() == 1
    call.refresh_from_db()
    assert call.review_revision == 0


def test_a_list_nested_just_under_the_recursion_limit_is_refused_without_echoing_it(api, user):
    call = BoundaryCallFactory(client=user)
    deep = "[" * 800 + "]" * 800  # parsed (under the limit with the middleware stack on top)
    for field in ["verdict", "quality_score", "corrected_triples"]:
        status, body = post_raw(api, f"/api/v1/calls/{call.pk}/feedback", f'{{"{field}": {deep}}}')
        assert status == 400, body
        assert [path.startswith(field) for path in body["error"]["fields"]] == [True]
        assert len(json.dumps(body)) < 1000


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json; charset=utf-16", b'{"text": "Chris prefers tea."}'),
        ("application/json", b'{"text": "Chris \xff prefers tea."}'),
        ("application/json; charset=no-such-codec", b'{"text": "\xff"}'),
    ],
    ids=["wrong-charset", "not-utf-8", "unknown-charset"],
)
def test_a_body_that_does_not_decode_is_malformed_json(api, content_type, raw):
    response = api.post("/api/v1/decompose", data=raw, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert BoundaryCall.objects.count() == 0


def test_json_nested_a_little_is_still_parsed(api):
    status, body = post(api, "/api/v1/decompose", {"text": [[[["Chris"]]]]})
    assert status == 400
    assert body["error"]["code"] == "invalid_input"


# --- Lone surrogates and NUL characters in API strings --------------------------------------


def recomposition(user) -> BoundaryCall:
    return BoundaryCallFactory(
        client=user, direction="recomposition", input=[TRIPLE], output="Chris likes it."
    )


def _body_and_field(case: str, bad: str) -> tuple[str, dict, str]:
    """(endpoint, JSON body, the field the error must name) with `bad` inside one string."""
    return {
        "decompose.text": ("/api/v1/decompose", {"text": f"a{bad}b"}, "text"),
        "recompose.subject": (
            "/api/v1/recompose",
            {"triples": [TRIPLE, {**TRIPLE, "subject": f"a{bad}b"}]},
            "triples[1].subject",
        ),
        "recompose.predicate": (
            "/api/v1/recompose",
            {"triples": [{**TRIPLE, "predicate": f"a{bad}b"}]},
            "triples[0].predicate",
        ),
        "recompose.object-as-list": (
            "/api/v1/recompose",
            {"triples": [["Chris", "prefers", f"a{bad}b"]]},
            "triples[0].object",
        ),
    }[case]


API_CASES = [
    "decompose.text",
    "recompose.subject",
    "recompose.predicate",
    "recompose.object-as-list",
]


@pytest.mark.parametrize("bad", SURROGATES, ids=["high", "low"])
@pytest.mark.parametrize("case", API_CASES)
def test_a_lone_surrogate_is_a_400_naming_the_field_and_stores_no_call(api, case, bad):
    path, body, field = _body_and_field(case, bad)
    status, answer = post(api, path, body)
    assert status == 400, answer
    assert field in answer["error"]["fields"], answer
    assert "surrogate" in answer["error"]["fields"][field][0].lower()
    assert BoundaryCall.objects.count() == 0


def test_a_lone_surrogate_is_reported_with_the_other_problems_of_the_triples(api):
    triples = [{**TRIPLE, "subject": "a\ud800b", "object": " "}, {"subject": "x"}]
    status, answer = post(api, "/api/v1/recompose", {"triples": triples})
    assert status == 400
    assert {"triples[0].subject", "triples[0].object", "triples[1].predicate"} <= set(
        answer["error"]["fields"]
    )


@pytest.mark.parametrize("case", API_CASES)
def test_a_nul_character_is_a_400_naming_the_field_and_stores_no_call(api, case):
    path, body, field = _body_and_field(case, "\x00")
    status, answer = post(api, path, body)
    assert status == 400, answer
    assert field in answer["error"]["fields"], answer
    assert BoundaryCall.objects.count() == 0


def _feedback_case(case: str, bad: str, user) -> tuple[BoundaryCall, dict, str]:
    if case == "corrected_text":
        return recomposition(user), {"corrected_text": f"a{bad}b"}, "corrected_text"
    call = BoundaryCallFactory(client=user)
    if case == "corrected_triples":
        body = {"corrected_triples": [{**TRIPLE, "object": f"a{bad}b"}]}
        return call, body, "corrected_triples[0].object"
    return call, {"verdict": f"accept{bad}"}, "verdict"


@pytest.mark.parametrize("bad", [*SURROGATES, "\x00"], ids=["high", "low", "nul"])
@pytest.mark.parametrize("case", ["corrected_text", "corrected_triples", "verdict"])
def test_feedback_with_a_lone_surrogate_or_nul_is_a_400_and_changes_nothing(api, user, case, bad):
    call, body, field = _feedback_case(case, bad, user)
    status, answer = post(api, f"/api/v1/calls/{call.pk}/feedback", body)
    assert status == 400, answer
    assert field in answer["error"]["fields"], answer
    call.refresh_from_db()
    assert (call.corrected_output, call.review_status) == (None, "unreviewed")


def test_an_escaped_surrogate_pair_is_a_valid_character_and_the_call_is_stored(api, teacher_api):
    teacher_api.return_value = httpx.Response(
        200, json=tool_message({"triples": [{**TRIPLE, "object": "😀"}]})
    )
    status, answer = post(api, "/api/v1/decompose", {"text": "Chris prefers \ud83d\ude00."})
    assert status == 200, answer
    assert BoundaryCall.objects.get().input == "Chris prefers 😀."


def test_a_recomposition_with_non_bmp_characters_is_stored(api, teacher_api):
    teacher_api.return_value = httpx.Response(200, json=text_message("Chris prefers 😀."))
    status, answer = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "object": "😀"}]})
    assert status == 200, answer
    assert BoundaryCall.objects.get().input == [{**TRIPLE, "object": "😀"}]


def test_feedback_with_non_bmp_characters_is_stored(api, user):
    call = recomposition(user)
    status, answer = post(api, f"/api/v1/calls/{call.pk}/feedback", {"corrected_text": "𝔘 ok"})
    assert status == 200, answer
    call.refresh_from_db()
    assert call.corrected_output == "𝔘 ok"


# --- 503 by design is a warning -------------------------------------------------------------


def test_a_503_when_nobody_can_answer_is_logged_as_a_warning_not_an_error(api, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        status, answer = post(api, "/api/v1/decompose", {"text": "Chris prefers tea."})
    assert status == 503 and answer["error"]["code"] == "teacher_unavailable"
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [(r.levelno, r.status_code) for r in logged] == [(logging.WARNING, 503)]


def test_an_unexpected_500_is_still_logged_as_an_error(api, caplog, monkeypatch, settings):
    from boundary import cascade

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cascade, "decompose", broken)
    api.raise_request_exception = False
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = api.post("/api/v1/decompose", {"text": "Chris prefers tea."}, format="json")
    assert response.status_code == 500
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [r.levelno for r in logged] == [logging.ERROR]


# --- The review console ---------------------------------------------------------------------


def member(group: str, **fields):
    user = UserFactory(**fields)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def rita(client):
    user = member(REVIEWERS, username="rita")
    client.force_login(user)
    return user


CONSOLE_PARAMETERS = ["q", "direction", "served_by", "version", "since", "until", "status"]


@pytest.mark.parametrize("name", CONSOLE_PARAMETERS)
@pytest.mark.parametrize("page", ["console", "queue", "item"])
def test_a_nul_in_a_console_query_parameter_is_a_400_page_not_a_500(client, rita, page, name):
    call = BoundaryCallFactory()
    path = {"console": "/review/", "queue": "/review/queue", "item": f"/review/{call.pk}/"}[page]
    response = client.get(path, {name: "a\x00b"})
    assert response.status_code == 400
    assert name in response.content.decode()


def test_a_nul_in_the_filters_of_a_review_post_is_a_400_and_saves_nothing(client, rita):
    call = BoundaryCallFactory()
    response = client.post(f"/review/{call.pk}/act?q=a%00b", {"action": "accept", "revision": 0})
    assert response.status_code == 400
    call.refresh_from_db()
    assert call.review_status == "unreviewed"


def test_a_corrected_text_with_a_nul_is_shown_in_the_editor_and_saves_nothing(client, rita):
    call = recomposition(UserFactory())
    response = client.post(
        f"/review/{call.pk}/act",
        {"action": "correct", "revision": 0, "text": "Chris\x00 likes it."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "NUL" in response.content.decode()
    call.refresh_from_db()
    assert call.corrected_output is None


def test_a_corrected_text_may_keep_its_line_breaks(client, rita):
    call = recomposition(UserFactory())
    response = client.post(
        f"/review/{call.pk}/act",
        {"action": "correct", "revision": 0, "text": "Chris likes it.\r\nA lot."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.corrected_output == "Chris likes it.\r\nA lot."


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
def test_the_first_and_last_calendar_days_are_valid_bounds_in_any_time_zone(zone):
    call = BoundaryCallFactory()
    filters = queue.QueueFilters(since=date.min, until=date.max)
    with override(ZoneInfo(zone)):
        assert list(queue.review_queue(filters).values_list("pk", flat=True)) == [call.pk]


@pytest.mark.parametrize("until", ["9999-12-31", "9999-12-30"])
def test_until_the_last_representable_days_is_a_valid_filter(client, rita, until):
    call = BoundaryCallFactory()
    response = client.get("/review/", {"until": until, "since": "0001-01-01"})
    assert response.status_code == 200
    assert f"#{call.pk}" in response.content.decode()


def test_a_date_filter_out_of_range_is_still_ignored(client, rita):
    call = BoundaryCallFactory()
    response = client.get("/review/", {"until": "10000-01-01", "since": "0000-12-31"})
    assert response.status_code == 200
    assert f"#{call.pk}" in response.content.decode()


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_a_nul_in_a_version_change_reason_is_refused_not_a_500(client, action):
    old = ModelVersionFactory(is_active=True, metrics={"headline": 0.5})
    new = ModelVersionFactory(
        metrics={"headline": 0.7, "baseline": {"version": old.pk, "headline": 0.5}}
    )
    target = new if action == "promote" else old
    client.force_login(member(STAFF))
    response = client.post(f"/models/{target.pk}/{action}", {"reason": "a\x00b"}, follow=True)
    assert response.status_code == 200
    assert "NUL" in response.content.decode()
    assert not VersionEvent.objects.exists()
