"""Schemathesis against a live server: every request it makes from the OpenAPI schema, valid or
not, gets an answer the schema documents (status, content type, headers and body, the error
shape included), never a 500; valid requests are accepted and invalid ones refused.

All of schemathesis's checks, over its examples, coverage and fuzzing phases per operation, then
its stateful phase: chains of calls that follow the schema's links (decompose -> the call ->
feedback on it). Bounded and derandomised, so every run sends the same requests. The LLM is
faked at the HTTP layer: it answers most calls and is overloaded for the rest, so both the 200
shapes and the documented 503 are checked.
"""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, settings
from rest_framework.throttling import UserRateThrottle
from schemathesis.checks import positive_data_acceptance

from boundary.models import BoundaryCall
from tests.anthropic_mock import error, text_message, tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory, TokenFactory

# The live server answers from its own thread, so the data must be committed; ids restart at 1
# so that each run sends the same requests.
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)

TRIPLE = {"subject": "Chris", "predicate": "prefers", "object": "composable architectures"}
CORRECTION_OF_THE_OTHER_KIND = [
    ["Not applicable to a decomposition call."],
    ["Not applicable to a recomposition call."],
]


def _served_schema() -> dict[str, Any]:
    """What /api/schema/ serves, generated at collection without a request or a database."""
    out = StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    return json.loads(out.getvalue())


SCHEMA = _served_schema()
schema = schemathesis.openapi.from_dict(
    SCHEMA,
    config=schemathesis.Config.from_dict(
        {
            "seed": 1,
            "checks": {
                "enabled": True,  # every check, positive and negative data included
                # The 503 without an LLM is documented (teacher_unavailable; the call is stored);
                # status_code_conformance still fails it wherever the schema does not list it.
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
            },
            "generation": {
                "max-examples": 40,  # per operation, fuzzing; coverage adds its own cases
                "deterministic": True,
                "database": "none",
                # The server keeps its state between examples, so a replay is not the same run:
                # a failure is reported as found.
                "no-shrink": True,
            },
        }
    ),
)
STATEFUL = settings(
    max_examples=15,
    stateful_step_count=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking, as above
)


def _teacher(request: httpx.Request) -> httpx.Response:
    """The LLM: overloaded for one request in four (by its size), else the answer asked for."""
    if len(request.content) % 4 == 0:
        return error(529, "overloaded_error", "Overloaded")
    if json.loads(request.content).get("tools"):  # decomposition calls the triples tool
        return httpx.Response(200, json=tool_message({"triples": [TRIPLE]}))
    return httpx.Response(200, json=text_message("Chris prefers composable architectures."))


@pytest.fixture
def server(live_server, user, teacher_api, monkeypatch) -> dict[str, Any]:
    """A live server holding calls and versions of every kind; its URL, token and call ids."""
    teacher_api.side_effect = _teacher
    # Thousands of requests from one token: no rate limit (test_api_input_errors tests it).
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": None})
    # None is active: the cascade would try to load it (it has no files) on every call.
    version = ModelVersionFactory(metrics={"exact_f1": 0.7}, threshold=0.8)
    ModelVersionFactory(direction="recomposition", status="failed", threshold=None)
    BoundaryCallFactory(client=user)
    BoundaryCallFactory(
        client=user,
        served_by="student",
        model_version=version,
        confidence=0.93,
        triple_sources=[{"stage": "encoder", "version": version.pk, "confidence": 0.93}],
        origin="api",
    )
    BoundaryCallFactory(client=user, direction="recomposition", input=[TRIPLE], output="Hi.")
    BoundaryCallFactory(client=user, served_by="unserved", output=None, teacher_error="timeout")
    BoundaryCallFactory(
        client=user, review_status="corrected", review_revision=2, corrected_output=[TRIPLE]
    )
    return {
        "base_url": live_server.url,
        "headers": {"Authorization": f"Token {TokenFactory(user=user).key}"},
        "call_ids": sorted(BoundaryCall.objects.values_list("pk", flat=True)),
    }


def _point_at_a_stored_call(case: schemathesis.Case, call_ids: list[int]) -> None:
    """A generated id names a stored call: random ones are all 404s, which check no body."""
    generated = (case.path_parameters or {}).get("id")
    # Only an id the schema allows (the coverage phase sends it as text); others stay invalid.
    if re.fullmatch(r"-?[0-9]+", str(generated)):
        case.path_parameters["id"] = call_ids[int(str(generated)) % len(call_ids)]


def _refused_for_the_calls_state(case: schemathesis.Case, response: Any) -> bool:
    """Schema-valid feedback that the call refuses, as documented: a correction of the other
    direction's kind (400; the schema cannot know a call's direction), or no revision for a call
    that has been reviewed (428)."""
    if not case.operation.path.endswith("/feedback"):
        return False
    if response.status_code == 428:
        return True
    fields = response.json()["error"].get("fields") if response.status_code == 400 else None
    return bool(fields) and all(m in CORRECTION_OF_THE_OTHER_KIND for m in fields.values())


def _validate(case: schemathesis.Case, response: Any, server: dict[str, Any], **extra: Any) -> None:
    """Every check, but positive_data_acceptance where the call's state decides, not the data."""
    refused = _refused_for_the_calls_state(case, response)
    case.validate_response(
        response,
        excluded_checks=[positive_data_acceptance] if refused else [],
        headers=server["headers"],
        **extra,
    )


def test_the_live_server_serves_the_schema_under_test(live_server):
    assert requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10).json() == SCHEMA


@schema.parametrize()
# The data is set up once for all the examples of an operation, on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_the_schema_says(case, server):
    _point_at_a_stored_call(case, server["call_ids"])
    transport = {"base_url": server["base_url"], "headers": server["headers"]}
    _validate(case, case.call(**transport), server, transport_kwargs=transport)


def test_chains_of_operations_answer_as_the_schema_says(server):
    transport = {"base_url": server["base_url"], "headers": server["headers"]}

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return transport

        def before_call(self, case: schemathesis.Case) -> None:
            # A link's If-Match is review_revision, a number, which schemathesis 4 passes on as
            # one; a header (the "simple" style) is its text.
            if case.headers and not isinstance(case.headers.get("If-Match", ""), str):
                case.headers["If-Match"] = str(case.headers["If-Match"])

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            _validate(
                case,
                response,
                server,
                additional_checks=additional_checks,
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Chains.run(settings=STATEFUL)
