from __future__ import annotations

import pytest

from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_client_lists_only_its_own_calls(api, user):
    mine = BoundaryCallFactory(client=user)
    BoundaryCallFactory(client=UserFactory())
    body = api.get("/api/v1/calls").json()
    assert [row["id"] for row in body["results"]] == [mine.pk]


def test_calls_are_filtered_by_direction_and_served_by(api, user):
    wanted = BoundaryCallFactory(client=user, direction="recomposition", output="Hi.")
    BoundaryCallFactory(client=user, direction="recomposition", served_by="unserved", output=None)
    BoundaryCallFactory(client=user)
    body = api.get("/api/v1/calls?direction=recomposition&served_by=teacher").json()
    assert [row["id"] for row in body["results"]] == [wanted.pk]


def test_calls_are_paginated(api, user):
    BoundaryCallFactory.create_batch(5, client=user)
    body = api.get("/api/v1/calls?page_size=2").json()
    assert (body["count"], len(body["results"])) == (5, 2)
    assert body["next"]


def test_a_bad_filter_value_is_a_400(api):
    response = api.get("/api/v1/calls?direction=sideways")
    assert response.status_code == 400
    assert "direction" in response.json()["error"]["fields"]


def test_a_bad_date_filter_is_a_400(api):
    response = api.get("/api/v1/calls?created_after=yesterday")
    assert response.status_code == 400


def test_one_call_can_be_read(api, user):
    call = BoundaryCallFactory(client=user, cost_usd="0.000123")
    body = api.get(f"/api/v1/calls/{call.pk}").json()
    assert (body["id"], body["cost_usd"], body["llm_model"]) == (
        call.pk,
        "0.000123",
        "claude-haiku-4-5",
    )


def test_models_list_shows_versions_and_which_is_active(api):
    active = ModelVersionFactory(is_active=True, metrics={"exact_f1": 0.7})
    ModelVersionFactory(status="failed")
    body = api.get("/api/v1/models?is_active=true").json()
    assert [(row["id"], row["metrics"]) for row in body["results"]] == [
        (active.pk, {"exact_f1": 0.7})
    ]


def test_the_openapi_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/decompose",
        "/api/v1/recompose",
        "/api/v1/calls",
        "/api/v1/calls/{id}",
        "/api/v1/calls/{id}/feedback",
        "/api/v1/models",
    } <= set(paths)


def test_the_interactive_docs_are_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"cdn" not in response.content.lower()


def test_the_schema_generates_without_warnings():
    from io import StringIO

    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def test_the_schema_allows_a_call_that_needed_no_fallback(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    field = components["BoundaryCall"]["properties"]["fallback_reason"]
    allowed = {
        value
        for ref in field.get("oneOf", []) + field.get("allOf", [])
        for value in components[ref["$ref"].rsplit("/", 1)[-1]]["enum"]
    }
    assert {"", "low_confidence", "no_active_model"} <= allowed


def test_the_request_schemas_state_the_limits_the_service_enforces(client, settings):
    settings.VALENCE_MAX_TEXT_CHARS = 1234
    settings.VALENCE_MAX_TRIPLES = 7
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert components["DecomposeRequestRequest"]["properties"]["text"]["maxLength"] == 1234
    triples = components["RecomposeRequestRequest"]["properties"]["triples"]
    assert (triples["minItems"], triples["maxItems"]) == (1, 7)
    assert components["TripleRequest"]["properties"]["subject"]["maxLength"] == (
        settings.VALENCE_MAX_FIELD_CHARS
    )
    assert len(components["FeedbackRequest"]["anyOf"]) == 4
