"""Dashboard series, aggregated in the database (one GROUP BY per chart, served by indexes).

Definitions (the same in charts, CSV exports and the README):
- live calls: every call except imported reference pairs;
- fallback rate: live calls whose local model was unsure, missing or broken (a fallback reason
  is recorded) over all live calls;
- latency: p50/p95 of `latency_ms` for answers served locally (`student`) and by the LLM
  (`teacher`); PostgreSQL computes the percentiles (`percentile_cont`), SQLite, meant for one
  machine, in Python;
- spend: LLM cost billed; saved: the LLM price of the calls a local model answered;
- projected monthly spend: the last 7 days' spend × 30 / 7;
- review outcome per model version: accepted / corrected / rejected among its reviewed calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from boundary.models import BoundaryCall, Direction, ReviewStatus, ServedBy
from boundary.stats import percentile

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _Bucketed(TypedDict):
    bucket: datetime


RANGES = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


class Percentile(Aggregate):
    """PostgreSQL's ordered-set aggregate: percentile_cont(f) WITHIN GROUP (ORDER BY x)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class Window:
    range_name: str
    direction: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, range_name: str | None, direction: str | None) -> Window:
        name = range_name if range_name in RANGES else "7d"
        end = timezone.now()
        return cls(
            range_name=name,
            direction=direction if direction in Direction.values else "",
            start=end - RANGES[name],
            end=end,
        )

    @property
    def hourly(self) -> bool:
        """Hours for a day or a week (a new install's week would otherwise be one point)."""
        return self.range_name in ("24h", "7d")

    def calls(self) -> QuerySet[BoundaryCall]:
        calls = BoundaryCall.objects.filter(created_at__gte=self.start, created_at__lt=self.end)
        if self.direction:
            calls = calls.filter(direction=self.direction)
        return calls.exclude(served_by=ServedBy.IMPORTED).order_by()

    def bucketed(self) -> QuerySet[WithAnnotations[BoundaryCall, _Bucketed], dict[str, Any]]:
        trunc = TruncHour if self.hourly else TruncDay
        return self.calls().annotate(bucket=trunc("created_at")).values("bucket")


def volume(window: Window) -> list[dict[str, Any]]:
    served: list[str] = [
        ServedBy.STUDENT,
        ServedBy.MEMORY,
        ServedBy.TEACHER,
        ServedBy.DEGRADED,
        ServedBy.UNSERVED,
    ]
    rows = window.bucketed().annotate(
        **{name: Count("id", filter=Q(served_by=name)) for name in served}
    )
    return [_row(r, {name: r[name] for name in served}) for r in rows.order_by("bucket")]


def fallback_rate(window: Window) -> list[dict[str, Any]]:
    rows = window.bucketed().annotate(
        calls=Count("id"), fallbacks=Count("id", filter=~Q(fallback_reason=""))
    )
    return [
        _row(
            r,
            {
                "calls": r["calls"],
                "fallbacks": r["fallbacks"],
                "fallback_rate": r["fallbacks"] / r["calls"] if r["calls"] else None,
            },
        )
        for r in rows.order_by("bucket")
    ]


def latency(window: Window) -> list[dict[str, Any]]:
    # Every answer produced on this machine is local: the degraded ones (unsure, no LLM) and
    # the remembered ones too.
    served: dict[str, list[str]] = {
        "local": [ServedBy.STUDENT, ServedBy.DEGRADED, ServedBy.MEMORY],
        "llm": [ServedBy.TEACHER],
    }
    if connection.vendor == "postgresql":
        aggregates = {}
        for name, served_by in served.items():
            only = Q(served_by__in=served_by)
            aggregates[f"{name}_p50_ms"] = Percentile("latency_ms", 0.5, filter=only)
            aggregates[f"{name}_p95_ms"] = Percentile("latency_ms", 0.95, filter=only)
        rows = window.bucketed().annotate(**aggregates).order_by("bucket")
        return [_row(r, {k: _round(r[k]) for k in aggregates}) for r in rows]
    return _latency_in_python(window, served)


def spend(window: Window) -> list[dict[str, Any]]:
    rows = window.bucketed().annotate(spent=Sum("cost_usd"), saved=Sum("avoided_cost_usd"))
    return [
        _row(r, {"spend_usd": _money(r["spent"]), "saved_usd": _money(r["saved"])})
        for r in rows.order_by("bucket")
    ]


def review_outcomes(window: Window) -> list[dict[str, Any]]:
    """Per model version: how reviewers judged its answers (accepted / corrected / rejected)."""
    reviewed = (
        window.calls()
        .filter(model_version__isnull=False)
        .exclude(review_status=ReviewStatus.UNREVIEWED)
    )
    rows = (
        reviewed.values("model_version", "model_version__kind", "model_version__direction")
        .annotate(
            reviewed=Count("id"),
            accepted=Count("id", filter=Q(review_status=ReviewStatus.ACCEPTED)),
            corrected=Count("id", filter=Q(review_status=ReviewStatus.CORRECTED)),
            rejected=Count("id", filter=Q(review_status=ReviewStatus.REJECTED)),
        )
        .order_by("model_version")
    )
    return [
        {
            "version": f"v{r['model_version']} {r['model_version__kind']}",
            "direction": r["model_version__direction"],
            "reviewed": r["reviewed"],
            "acceptance_rate": r["accepted"] / r["reviewed"],
            "correction_rate": r["corrected"] / r["reviewed"],
            "rejection_rate": r["rejected"] / r["reviewed"],
        }
        for r in rows
    ]


SERIES: dict[str, Callable[[Window], list[dict[str, Any]]]] = {
    "volume": volume,
    "fallback_rate": fallback_rate,
    "latency": latency,
    "spend": spend,
    "review_outcomes": review_outcomes,
}


def summary(window: Window) -> dict[str, Any]:
    """The cards above the charts: totals for the window and the projected monthly spend."""
    totals = window.calls().aggregate(
        calls=Count("id"),
        fallbacks=Count("id", filter=~Q(fallback_reason="")),
        spent=Sum("cost_usd"),
        saved=Sum("avoided_cost_usd"),
    )
    week = Window.parse("7d", window.direction)
    weekly = week.calls().aggregate(spent=Sum("cost_usd"))["spent"] or Decimal(0)
    return {
        "calls": totals["calls"],
        "fallback_rate": totals["fallbacks"] / totals["calls"] if totals["calls"] else None,
        "spend_usd": _money(totals["spent"]),
        "saved_usd": _money(totals["saved"]),
        "projected_monthly_spend_usd": _money(weekly * 30 / 7),
    }


def _latency_in_python(window: Window, served: dict[str, list[str]]) -> list[dict[str, Any]]:
    group_of = {value: name for name, values in served.items() for value in values}
    values: dict[Any, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in (
        window.bucketed()
        .filter(served_by__in=list(group_of))
        .values("bucket", "served_by", "latency_ms")
    ):
        values[row["bucket"]][group_of[row["served_by"]]].append(row["latency_ms"])
    result = []
    for bucket in sorted(values):
        columns: dict[str, Any] = {}
        for name in served:
            latencies = values[bucket].get(name, [])
            columns[f"{name}_p50_ms"] = _round(percentile(latencies, 50))
            columns[f"{name}_p95_ms"] = _round(percentile(latencies, 95))
        result.append(_row({"bucket": bucket}, columns))
    return result


def _row(row: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    return {"bucket": row["bucket"].isoformat(), **columns}


def _money(value: Decimal | None) -> float:
    return round(float(value or 0), 6)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
