"""Bad input gets a 4xx with a JSON body naming the problem; never a 500, never a stored call."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from boundary.models import BoundaryCall

pytestmark = pytest.mark.django_db

TRIPLE = {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}


def post(api: APIClient, path: str, body: object) -> tuple[int, dict]:
    response = api.post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_it_requires_authentication():
    response = APIClient().post("/api/v1/decompose", {"text": "hi"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_it_rejects_an_unknown_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post("/api/v1/recompose", {"triples": [TRIPLE]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "path", ["/api/v1/calls", "/api/v1/models", "/api/v1/calls/1", "/api/v1/calls/1/feedback"]
)
def test_every_endpoint_requires_authentication(path):
    client = APIClient()
    response = client.post(path, {}, format="json") if "feedback" in path else client.get(path)
    assert response.status_code == 401


def test_it_rejects_empty_text(api):
    status, body = post(api, "/api/v1/decompose", {"text": "   "})
    assert status == 400
    assert body["error"]["code"] == "invalid_input"
    assert "text" in body["error"]["fields"]


def test_it_rejects_missing_text(api):
    status, body = post(api, "/api/v1/decompose", {"txt": "Chris prefers tea."})
    assert status == 400
    assert body["error"]["fields"]["text"] == ["This field is required."]


def test_it_rejects_over_long_text(api, settings):
    settings.VALENCE_MAX_TEXT_CHARS = 100
    status, body = post(api, "/api/v1/decompose", {"text": "a" * 101})
    assert status == 400
    assert "100" in body["error"]["fields"]["text"][0]


@pytest.mark.parametrize("value", [42, 4.2, True, None, ["Chris"], {"text": "Chris"}])
def test_it_rejects_text_of_the_wrong_json_type(api, value):
    status, body = post(api, "/api/v1/decompose", {"text": value})
    assert status == 400
    assert "text" in body["error"]["fields"]


def test_it_rejects_nul_characters_in_text(api):
    status, body = post(api, "/api/v1/decompose", {"text": "Chris\x00 prefers tea"})
    assert status == 400
    assert "NUL" in body["error"]["fields"]["text"][0]


def test_it_rejects_a_body_that_is_not_an_object(api):
    status, body = post(api, "/api/v1/decompose", ["Chris prefers tea."])
    assert status == 400
    assert body["error"]["code"] == "invalid_input"


def test_it_rejects_a_non_json_body(api):
    response = api.post("/api/v1/decompose", data="{text: oops", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_it_rejects_a_body_that_is_not_declared_json(api):
    response = api.post("/api/v1/decompose", data="text=hi", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_it_rejects_a_2_megabyte_body_before_parsing_it(api):
    body = json.dumps({"text": "a" * (2 * 1024 * 1024)})
    response = api.post("/api/v1/decompose", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_it_rejects_a_triple_with_a_missing_field(api):
    status, body = post(api, "/api/v1/recompose", {"triples": [{"subject": "a", "object": "b"}]})
    assert status == 400
    assert "triples[0].predicate" in body["error"]["fields"]


def test_it_rejects_a_triple_with_an_empty_field(api):
    status, body = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "object": " "}]})
    assert status == 400
    assert "triples[0].object" in body["error"]["fields"]


def test_it_names_every_bad_triple(api):
    bad = [TRIPLE, {**TRIPLE, "subject": 7}, "not a triple"]
    status, body = post(api, "/api/v1/recompose", {"triples": bad})
    assert status == 400
    assert {"triples[1].subject", "triples[2]"} <= set(body["error"]["fields"])


def test_it_rejects_too_many_triples(api, settings):
    settings.VALENCE_MAX_TRIPLES = 3
    status, body = post(api, "/api/v1/recompose", {"triples": [TRIPLE] * 4})
    assert status == 400
    assert "3" in json.dumps(body["error"]["fields"])


def test_it_rejects_an_empty_triple_list(api):
    status, body = post(api, "/api/v1/recompose", {"triples": []})
    assert status == 400
    assert body["error"]["code"] == "invalid_input"


def test_it_rejects_triples_that_are_not_a_list(api):
    status, body = post(api, "/api/v1/recompose", {"triples": "Chris | prefers | tea"})
    assert status == 400
    assert body["error"]["code"] == "invalid_input"


def test_invalid_input_stores_no_call(api):
    post(api, "/api/v1/decompose", {"text": ""})
    post(api, "/api/v1/recompose", {"triples": []})
    assert BoundaryCall.objects.count() == 0


def test_an_unknown_api_url_answers_json_404(api, settings):
    settings.DEBUG = False
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_get_on_decompose_is_405_with_json(api):
    response = api.get("/api/v1/decompose")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_it_throttles_per_token(api, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import UserRateThrottle

    original_rates = UserRateThrottle.THROTTLE_RATES
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "2/minute"},
    }
    UserRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [api.get("/api/v1/models").status_code for _ in range(3)]
        response = api.get("/api/v1/models")
    finally:
        UserRateThrottle.THROTTLE_RATES = original_rates
    assert codes[:2] == [200, 200]
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert "Retry-After" in response.headers


# --- refused before any view: still JSON under /api/ ----------------------------------------------


def test_a_bad_host_header_under_the_api_is_a_json_400(client):
    response = client.get("/api/v1/calls", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_bad_host_header_elsewhere_keeps_the_html_page(client):
    response = client.get("/review/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
