"""The request limits on triples, read from Django settings: the one place that builds them."""

from __future__ import annotations

from boundary.triples import DEFAULT_LIMITS, TripleLimits


def limits_from_settings() -> TripleLimits:
    """``VALENCE_MAX_TRIPLES`` and ``VALENCE_MAX_FIELD_CHARS``; either unset: ``TripleLimits()``."""
    from django.conf import settings

    return TripleLimits(
        max_triples=int(getattr(settings, "VALENCE_MAX_TRIPLES", DEFAULT_LIMITS.max_triples)),
        max_field_chars=int(
            getattr(settings, "VALENCE_MAX_FIELD_CHARS", DEFAULT_LIMITS.max_field_chars)
        ),
    )
