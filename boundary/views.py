"""The few non-API pages of the boundary app."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boundary.models import BoundaryCall, ModelVersion


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    served = dict(BoundaryCall.objects.order_by().values_list("served_by").annotate(n=Count("id")))
    active = ModelVersion.objects.active().order_by("direction", "kind")
    return render(request, "home.html", {"served": served, "active_versions": active})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness + database reachability, for load balancers and the set-up script."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # report, don't crash: this is what a probe wants to read
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
