"""Dashboard pages: cards and charts (Chart.js, from static/), each series also as CSV."""

from __future__ import annotations

import csv

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boundary.models import Direction, ModelVersion
from review import metrics
from review.roles import DASHBOARDS, requires
from training.audit import audit_overview

CHARTS = [
    ("volume", "Call volume by who answered"),
    ("fallback_rate", "Fallback rate"),
    ("latency", "Latency p50/p95: local vs LLM (ms)"),
    ("spend", "LLM spend and money saved (USD)"),
    ("review_outcomes", "Review outcome per model version"),
]


@require_GET
@requires(DASHBOARDS)
def dashboards(request: HttpRequest) -> HttpResponse:
    window = metrics.Window.parse(request.GET.get("range"), request.GET.get("direction"))
    active = ModelVersion.objects.active().order_by("direction", "kind")
    if window.direction:
        active = active.filter(direction=window.direction)
    return render(
        request,
        "review/dashboards.html",
        {
            "window": window,
            "summary": metrics.summary(window),
            "charts": CHARTS,
            "ranges": list(metrics.RANGES),
            "directions": Direction.values,
            "audit": audit_overview(list(active)),
        },
    )


@require_GET
@requires(DASHBOARDS)
def series(request: HttpRequest, name: str, format: str) -> HttpResponse:
    build = metrics.SERIES.get(name)
    if build is None or format not in ("json", "csv"):
        raise Http404(f"no series {name}.{format}")
    window = metrics.Window.parse(request.GET.get("range"), request.GET.get("direction"))
    rows = build(window)
    if format == "json":
        return JsonResponse(
            {
                "series": name,
                "range": window.range_name,
                "direction": window.direction,
                "rows": rows,
            }
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    direction = window.direction or "all"
    response["Content-Disposition"] = (
        f'attachment; filename="{name}-{direction}-{window.range_name}.csv"'
    )
    if rows:
        writer = csv.DictWriter(response, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return response
