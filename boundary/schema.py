"""The OpenAPI schema states the limits the running service enforces (a drf-spectacular hook).

Validation reads the limits from settings on every request (boundary.triples_settings), so the
schema is completed from the same settings when it is generated, not frozen at import.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from boundary.triples_settings import limits_from_settings

# What the validators accept, as ECMA-262 patterns (which Python's re reads alike). Both strip
# whitespace first, as Python's str.strip() defines it (WHITESPACE, a character class body).
WHITESPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text: something besides whitespace, and no NUL anywhere.
TEXT_PATTERN = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"
# A triple's field: something besides whitespace, and no control character once stripped
# (boundary.triples), so a control character may only be stripped whitespace at either end.
FIELD_PATTERN = (
    rf"^[{WHITESPACE}]*[^\x00-\x20\x7f{WHITESPACE}]"
    rf"(?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f{WHITESPACE}])?[{WHITESPACE}]*$"
)


def add_limits(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: text lengths, triple counts, field lengths and contents, and
    the empty query values the list endpoints ignore."""
    schemas = result.get("components", {}).get("schemas", {})
    limits = limits_from_settings()
    text_limit = {"maxLength": settings.VALENCE_MAX_TEXT_CHARS, "pattern": TEXT_PATTERN}
    if "TripleRequest" in schemas:
        triple = schemas["TripleRequest"]
        triple["additionalProperties"] = False  # an unknown field is a 400
        for field in triple["properties"].values():
            field.update(maxLength=limits.max_field_chars, pattern=FIELD_PATTERN)
    triples = {"minItems": 1, "maxItems": limits.max_triples}
    if "DecomposeRequestRequest" in schemas:
        schemas["DecomposeRequestRequest"]["properties"]["text"].update(text_limit)
    if "RecomposeRequestRequest" in schemas:
        schemas["RecomposeRequestRequest"]["properties"]["triples"].update(triples)
    if "FeedbackRequest" in schemas:
        feedback = schemas["FeedbackRequest"]
        feedback["properties"]["corrected_text"].update(text_limit)
        feedback["properties"]["corrected_triples"].update(triples)
        # At least one of score, correction or verdict (a revision alone is not feedback).
        feedback["anyOf"] = [
            {"required": [name]}
            for name in ("quality_score", "corrected_triples", "corrected_text", "verdict")
        ]
        _require_body(result, "/api/v1/calls/{id}/feedback", "post")  # no body: no feedback
        # One correction, of the call's kind (which only the call knows), and never a rejection.
        corrections = [{"required": ["corrected_triples"]}, {"required": ["corrected_text"]}]
        feedback["allOf"] = [
            {"not": {"required": ["corrected_triples", "corrected_text"]}},
            {
                "not": {
                    "required": ["verdict"],
                    "properties": {"verdict": {"enum": ["reject"]}},
                    "anyOf": corrections,
                }
            },
        ]
    _allow_empty_query_values(result)
    _add_links(result)
    return result


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def _add_links(result: dict[str, Any]) -> None:
    """OpenAPI links: from a call's answer to the call itself and to feedback on it."""
    by_call_id = {
        "GetCall": _link("v1_calls_retrieve", "The stored call.", id="$response.body#/call_id"),
        "GiveFeedback": _link(
            "v1_calls_feedback_create", "Feedback on the call.", id="$response.body#/call_id"
        ),
    }
    # Feedback on a call as read, based on the revision read (If-Match).
    on_the_call = {
        "GiveFeedback": _link(
            "v1_calls_feedback_create",
            "Feedback based on this revision of the call.",
            id="$response.body#/id",
            **{"header.If-Match": "$response.body#/review_revision"},
        )
    }
    links = {
        ("/api/v1/decompose", "post"): by_call_id,
        ("/api/v1/recompose", "post"): by_call_id,
        ("/api/v1/calls/{id}", "get"): on_the_call,
        ("/api/v1/calls/{id}/feedback", "post"): on_the_call,
    }
    paths = result.get("paths", {})
    for (path, method), operation_links in links.items():
        responses = paths.get(path, {}).get(method, {}).get("responses", {})
        if "200" in responses:
            responses["200"]["links"] = operation_links


def _require_body(result: dict[str, Any], path: str, method: str) -> None:
    body = result.get("paths", {}).get(path, {}).get(method, {}).get("requestBody")
    if body is not None:
        body["required"] = True


def _allow_empty_query_values(result: dict[str, Any]) -> None:
    """Every list filter, `page` and `page_size` read an empty value as "not given"."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
