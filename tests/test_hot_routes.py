"""The hot routes (boundary.hot_routes): the plain decompose and recompose POSTs answered in
front of Django, everything else handed to the full stack, with the same answers either way.

Requests go through the WSGI callable, as gunicorn sends them. The full stack (Django's
WSGIHandler) is wrapped so each test sees whether it answered.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, close_old_connections
from rest_framework.throttling import UserRateThrottle

from boundary import cascade
from boundary.hot_routes import HotRoutes
from boundary.models import BoundaryCall
from boundary.triples import Triple
from tests.factories import ModelVersionFactory, TokenFactory
from tests.scripted_student import ScriptedStudent

pytestmark = pytest.mark.django_db

CHRIS = Triple("Chris", "prefers", "composable architectures")
# What differs between two answers to the same request: the stored call and its timing.
VOLATILE = {"call_id", "latency_ms"}


class CountingDjango:
    """Django's full stack, counting the requests it answers."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.requests += 1
        return self.handler(environ, start_response)


@pytest.fixture
def django_stack() -> Iterator[CountingDjango]:
    # As Django's test client does: a request's signals must not close the test's connection
    # (its transaction is rolled back at the end of the test).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield CountingDjango()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def app(django_stack) -> HotRoutes:
    return HotRoutes(django_stack)


@pytest.fixture
def token(user) -> str:
    return TokenFactory(user=user).key


@pytest.fixture
def student(scripted_loader) -> ScriptedStudent:
    answer = ScriptedStudent([CHRIS], confidence=0.9, text="Chris prefers composable things.")
    for direction in ("decomposition", "recomposition"):
        version = ModelVersionFactory(backend="scripted", is_active=True, direction=direction)
        scripted_loader.students[version.pk] = answer
    return answer


def post(
    app: Any, path: str, body: Any, token: str | None, **environ: str
) -> tuple[int, dict[str, str], Any]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **({"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}),
        **environ,
    }
    answer: list[Any] = []
    content = b"".join(app(request, lambda status, headers, *_: answer.extend([status, headers])))
    status, headers = answer
    return int(status.split()[0]), dict(headers), json.loads(content) if content else None


def remember(app: HotRoutes, token: str) -> None:
    """One request through the full stack checks the token; this process then remembers it."""
    post(app, "/api/v1/decompose", {"text": "warm up"}, token)


def test_a_remembered_token_is_answered_without_the_full_stack(app, django_stack, token, student):
    remember(app, token)
    status, _, body = post(app, "/api/v1/decompose", {"text": "Chris prefers tea."}, token)
    assert (status, body["served_by"], django_stack.requests) == (200, "student", 1)
    assert body["triples"][0]["subject"] == "Chris"


def test_a_token_not_yet_checked_goes_through_the_full_stack(app, django_stack, token, student):
    status, _, _ = post(app, "/api/v1/decompose", {"text": "Chris prefers tea."}, token)
    assert (status, django_stack.requests) == (200, 1)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/decompose", {"text": "Chris prefers tea."}),
        ("/api/v1/recompose", {"triples": [CHRIS.as_dict()]}),
    ],
)
def test_both_stacks_give_the_same_answer_and_headers(app, token, student, settings, path, body):
    remember(app, token)
    hot = post(app, path, body, token)
    settings.VALENCE_HOT_ROUTES = False
    full = post(app, path, body, token)
    assert hot[0] == full[0] == 200
    assert hot[1] == full[1] | {"Content-Length": hot[1]["Content-Length"]}
    assert {k: v for k, v in hot[2].items() if k not in VOLATILE} == {
        k: v for k, v in full[2].items() if k not in VOLATILE
    }


def test_both_stacks_store_the_same_call(app, token, student, settings):
    remember(app, token)
    post(app, "/api/v1/decompose", {"text": "Chris prefers tea."}, token)
    settings.VALENCE_HOT_ROUTES = False
    post(app, "/api/v1/decompose", {"text": "Chris prefers tea."}, token)
    hot, full = BoundaryCall.objects.order_by("-pk")[:2][::-1]
    columns = ("direction", "input", "output", "served_by", "client_id", "origin", "group_key")
    assert [getattr(hot, c) for c in columns] == [getattr(full, c) for c in columns]


@pytest.mark.parametrize(
    ("body", "environ", "status"),
    [
        (b'{"text": "Chris', {}, 400),  # JSON that does not parse
        (b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" * 40, {}, 400),  # nested past the parser
        ({"text": ""}, {}, 400),  # does not validate
        ({"text": 3}, {}, 400),
        ({"text": "Chris"}, {"CONTENT_TYPE": "text/plain"}, 415),
        ({"text": "Chris"}, {"HTTP_ACCEPT": "text/html"}, 406),
        ({"text": "Chris"}, {"HTTP_HOST": "evil.example"}, 400),
        ({"text": "Chris"}, {"HTTP_AUTHORIZATION": "Token nope"}, 401),
        ({"text": "Chris"}, {"CONTENT_LENGTH": "not a number"}, 400),
    ],
)
def test_what_is_not_plain_is_refused_by_the_full_stack(
    app, django_stack, token, student, body, environ, status
):
    remember(app, token)
    answer = post(app, "/api/v1/decompose", body, token, **environ)
    assert (answer[0], django_stack.requests) == (status, 2)
    assert "error" in answer[2]


def test_a_body_over_the_limit_is_refused_by_the_full_stack(
    app, django_stack, token, student, settings
):
    remember(app, token)
    settings.VALENCE_MAX_REQUEST_BYTES = 1024
    status, _, body = post(app, "/api/v1/decompose", {"text": "x" * 2000}, token)
    assert (status, body["error"]["code"], django_stack.requests) == (413, "payload_too_large", 2)


def test_over_the_rate_the_full_stack_refuses_and_nothing_is_counted_twice(
    app, token, student, monkeypatch
):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    statuses = [post(app, "/api/v1/decompose", {"text": "Chris"}, token)[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert BoundaryCall.objects.count() == 3


def test_plain_http_where_https_is_required_is_redirected_by_the_full_stack(
    django_stack, token, student, settings
):
    settings.SECURE_SSL_REDIRECT = True  # read as the middleware is built
    django = CountingDjango()
    app = HotRoutes(django)
    remember(app, token)
    status, headers, _ = post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert (status, headers["Location"][:8], django.requests) == (301, "https://", 2)


def test_nobody_able_to_answer_is_a_503_with_the_call_stored(app, django_stack, token, student):
    remember(app, token)
    student.error = RuntimeError("broken")  # and no LLM key
    status, headers, body = post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert (status, body["error"]["code"], headers["Allow"]) == (
        503,
        "teacher_unavailable",
        "POST, OPTIONS",
    )
    assert BoundaryCall.objects.get(pk=body["error"]["call_id"]).served_by == "unserved"
    assert django_stack.requests == 1


def test_a_database_failure_is_a_503_to_retry(app, token, student, monkeypatch):
    remember(app, token)

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(cascade, "decompose", unavailable)
    status, headers, body = post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert (status, body["error"]["code"], headers["Retry-After"]) == (
        503,
        "database_unavailable",
        "5",
    )


def test_an_unexpected_error_is_a_logged_500_in_json(app, token, student, monkeypatch, caplog):
    remember(app, token)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cascade, "decompose", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, _, body = post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert (status, body["error"]["code"]) == (500, "server_error")
    assert any(
        record.exc_info and record.exc_info[0] is ZeroDivisionError for record in caplog.records
    )


def test_the_hot_routes_count_requests_under_the_route_template(app, token, student):
    from boundary import metrics

    remember(app, token)
    series = metrics.HTTP_REQUESTS.labels("/api/v1/decompose", "POST", "200")
    before = series._value.get()
    post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert series._value.get() == before + 1


def test_turned_off_everything_goes_through_the_full_stack(
    app, django_stack, token, student, settings
):
    settings.VALENCE_HOT_ROUTES = False
    remember(app, token)
    post(app, "/api/v1/decompose", {"text": "Chris"}, token)
    assert django_stack.requests == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"served_by": "student", "confidence": 0.93, "model_version": "v"},
        {"served_by": "teacher", "confidence": None, "fallback_reason": "low_confidence"},
        {"served_by": "degraded", "confidence": 0.2, "model_version": "v"},
        {"served_by": "unserved", "output": None, "teacher_error": "timeout"},
        {"direction": "recomposition", "input": [CHRIS.as_dict()], "output": "Chris likes tea."},
        {"direction": "recomposition", "input": [CHRIS.as_dict()], "output": None},
    ],
)
def test_the_quick_response_representation_is_drfs_own(fields):
    from rest_framework import serializers

    from boundary.serializers import DecomposeResponseSerializer, RecomposeResponseSerializer
    from tests.factories import BoundaryCallFactory

    if fields.get("model_version") == "v":
        fields = {**fields, "model_version": ModelVersionFactory()}
    call = BoundaryCallFactory(
        **{"triple_sources": [{"stage": "encoder", "version": 1, "confidence": 0.9}], **fields}
    )
    serializer_class = (
        RecomposeResponseSerializer
        if call.direction == "recomposition"
        else DecomposeResponseSerializer
    )
    serializer = serializer_class(call)
    assert serializer.data == serializers.Serializer.to_representation(serializer, call)
