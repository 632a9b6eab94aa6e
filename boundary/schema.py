"""The OpenAPI schema states the limits the running service enforces (a drf-spectacular hook).

Validation reads the limits from settings on every request (boundary.triples_settings), so the
schema is completed from the same settings when it is generated, not frozen at import.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from boundary.triples_settings import limits_from_settings


def add_limits(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: text lengths, triple counts and field lengths."""
    schemas = result.get("components", {}).get("schemas", {})
    limits = limits_from_settings()
    text_limit = {"maxLength": settings.VALENCE_MAX_TEXT_CHARS}
    if "TripleRequest" in schemas:
        for field in schemas["TripleRequest"]["properties"].values():
            field["maxLength"] = limits.max_field_chars
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
    return result
