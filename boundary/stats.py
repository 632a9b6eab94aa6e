"""Summary statistics shared by serving, training and the dashboards (Django-free)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import overload


@overload
def percentile(values: Sequence[float], percent: int) -> float | None: ...
@overload
def percentile(values: Sequence[float], percent: int, empty: float) -> float: ...
def percentile(values: Sequence[float], percent: int, empty: float | None = None) -> float | None:
    """The ``percent``-th percentile (1 to 99) by linear interpolation between the closest
    ranks, as PostgreSQL's ``percentile_cont`` computes it; ``empty`` when there are no values."""
    if not 1 <= percent <= 99:
        raise ValueError(f"percent must be between 1 and 99, got {percent!r}")
    if not values:
        return empty
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
