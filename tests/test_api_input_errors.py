"""Bad input gets a 4xx with a JSON body naming the problem; never a 500, never a stored call."""

from __future__ import annotations

import json
import re

import pytest
from rest_framework.test import APIClient

from boundary.models import BoundaryCall
from tests.factories import BoundaryCallFactory

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


# --- the schema and the service agree (found by tests/test_schemathesis.py) --------------------


def openapi(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_a_model_version_filter_naming_no_version_is_an_empty_page(api, user):
    BoundaryCallFactory(client=user)
    response = api.get("/api/v1/calls?model_version=999")
    assert (response.status_code, response.json()["results"]) == (200, [])


@pytest.mark.parametrize("value", ["0", "-1", str(2**63), "1.5", "one"])
def test_a_model_version_filter_that_is_no_id_is_a_400(api, value):
    response = api.get("/api/v1/calls", {"model_version": value})
    assert response.status_code == 400
    assert "model_version" in response.json()["error"]["fields"]


def test_the_schema_states_which_model_version_ids_exist(client):
    (parameter,) = [
        p
        for p in openapi(client)["paths"]["/api/v1/calls"]["get"]["parameters"]
        if p["name"] == "model_version"
    ]
    assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, 2**63 - 1)


def test_the_schema_allows_a_call_stored_by_no_door(api, user, client):
    BoundaryCallFactory(client=user)  # origin "": a command, an import or the live audit
    assert api.get("/api/v1/calls").json()["results"][0]["origin"] == ""
    components = openapi(client)["components"]["schemas"]
    field = components["BoundaryCall"]["properties"]["origin"]
    allowed = {
        value
        for ref in field["oneOf"]
        for value in components[ref["$ref"].rsplit("/", 1)[-1]]["enum"]
    }
    assert allowed == {"", "api", "playground"}


def test_the_schema_refuses_a_triple_field_it_does_not_know(api, client):
    status, _ = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "note": "x"}]})
    assert status == 400
    triple = openapi(client)["components"]["schemas"]["TripleRequest"]
    assert triple["additionalProperties"] is False


@pytest.mark.parametrize(
    "value",
    [
        "Chris",
        " Chris\t",
        "\u3000Chris\n",
        "Chris Smith",
        "",
        " ",
        "\u3000\x85",
        "\x00",
        "Chris\x00",
        "Chris\nSmith",
        "Chris\x7f",
        "\x1fChris",
        "Chris\x01",
    ],
)
def test_the_schema_patterns_accept_exactly_what_validation_accepts(api, client, value):
    schemas = openapi(client)["components"]["schemas"]
    text_pattern = schemas["DecomposeRequestRequest"]["properties"]["text"]["pattern"]
    field_pattern = schemas["TripleRequest"]["properties"]["subject"]["pattern"]
    # Accepted input reaches the cascade, which has no LLM here: a 503, not a 400.
    text_status, _ = post(api, "/api/v1/decompose", {"text": value})
    triple_status, _ = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "subject": value}]})
    assert (text_status != 400) == bool(re.search(text_pattern, value))
    assert (triple_status != 400) == bool(re.search(field_pattern, value))


def test_a_limit_counts_the_value_as_sent_not_once_stripped(api, settings):
    settings.VALENCE_MAX_TEXT_CHARS = 10
    settings.VALENCE_MAX_FIELD_CHARS = 5
    status, body = post(api, "/api/v1/decompose", {"text": " " + "a" * 10})
    assert (status, body["error"]["fields"]["text"]) == (
        400,
        ["Ensure this field has no more than 10 characters (it has 11)."],
    )
    status, body = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "object": "abcde\n"}]})
    assert (status, body["error"]["fields"]["triples[0].object"]) == (
        400,
        ["Must be at most 5 characters; got 6."],
    )


def test_a_field_too_long_either_way_is_named_once(api, settings):
    settings.VALENCE_MAX_FIELD_CHARS = 5
    status, body = post(api, "/api/v1/recompose", {"triples": [{**TRIPLE, "object": "abcdefg"}]})
    assert (status, body["error"]["fields"]["triples[0].object"]) == (
        400,
        ["Must be at most 5 characters; got 7."],
    )


def test_every_query_parameter_may_be_empty_and_page_size_starts_at_1(api, client):
    response = api.get("/api/v1/calls?direction=&model_version=&created_after=&page=&page_size=")
    assert response.status_code == 200
    for path in ["/api/v1/calls", "/api/v1/models"]:
        parameters = openapi(client)["paths"][path]["get"]["parameters"]
        assert all(p["allowEmptyValue"] for p in parameters if p["in"] == "query")
    (page_size,) = [
        p
        for p in openapi(client)["paths"]["/api/v1/calls"]["get"]["parameters"]
        if p["name"] == "page_size"
    ]
    assert page_size["schema"]["minimum"] == 1


@pytest.mark.parametrize(
    "value", ["3", '"3"', 'W/"3"', " 3\t", "W/3", '"3', '""3""', 'W/ "3"', "w/3", "3 4", "x", ""]
)
def test_if_match_is_accepted_exactly_as_the_schema_says(api, user, client, value):
    call = BoundaryCallFactory(client=user)
    response = api.post(
        f"/api/v1/calls/{call.pk}/feedback",
        {"verdict": "accept"},
        format="json",
        HTTP_IF_MATCH=value,
    )
    (parameter,) = [
        p
        for p in openapi(client)["paths"]["/api/v1/calls/{id}/feedback"]["post"]["parameters"]
        if p["name"] == "If-Match"
    ]
    # A well-formed revision other than 0 is stale (409); only a malformed one is a 400.
    assert (response.status_code != 400) == bool(re.search(parameter["schema"]["pattern"], value))


def test_feedback_needs_a_body_and_the_schema_says_so(api, user, client):
    call = BoundaryCallFactory(client=user)
    response = api.post(f"/api/v1/calls/{call.pk}/feedback")
    assert response.status_code == 400
    operation = openapi(client)["paths"]["/api/v1/calls/{id}/feedback"]["post"]
    assert operation["requestBody"]["required"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"corrected_triples": [TRIPLE], "corrected_text": "Chris prefers tea."},
        {"corrected_triples": [TRIPLE], "verdict": "reject"},
    ],
    ids=["two-corrections", "correction-and-rejection"],
)
def test_feedback_the_schema_forbids_is_refused(api, user, body):
    call = BoundaryCallFactory(client=user)
    status, response = post(api, f"/api/v1/calls/{call.pk}/feedback", body)
    assert (status, response["error"]["code"]) == (400, "invalid_input")


def test_the_schema_forbids_two_corrections_and_a_corrected_rejection(client):
    feedback = openapi(client)["components"]["schemas"]["FeedbackRequest"]
    forbidden = [rule["not"] for rule in feedback["allOf"]]
    assert {"required": ["corrected_triples", "corrected_text"]} in forbidden
    rejections = [rule for rule in forbidden if "verdict" in rule.get("properties", {})]
    assert rejections[0]["properties"]["verdict"] == {"enum": ["reject"]}


def test_every_error_response_is_documented_with_the_error_shape(client):
    schema = openapi(client)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/ErrorResponse"}, (
                        path,
                        method,
                        status,
                    )
            if method == "post":
                assert "415" in operation["responses"], path
