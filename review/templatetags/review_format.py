"""Small display filters for the review pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | str | None, digits: int = 1) -> str:
    """0.9312 -> "93.1 %"; None or "" (a missing template variable) -> "–" (a share not
    measured yet)."""
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def percent_left(fallback_rate: float | str | None) -> str:
    """A fallback rate shown as the share answered alone: 0.25 -> "75.0 %"."""
    if fallback_rate is None or fallback_rate == "":
        return "–"
    return percent(1 - float(fallback_rate))
