"""The few non-API pages of the boundary app."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from boundary.models import BoundaryCall, ModelVersion


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What the service is; traffic and models only for those allowed to see the dashboards.

    The counts cover the last 24 hours (an index range on created_at), never the whole table:
    the home page is the cheapest page and must stay so at millions of calls.
    """
    context: dict[str, object] = {"can_see_traffic": False}
    if request.user.has_perm("boundary.view_dashboards"):
        since = timezone.now() - timedelta(hours=24)
        recent = BoundaryCall.objects.filter(created_at__gte=since).order_by()
        context.update(
            can_see_traffic=True,
            served=dict(recent.values_list("served_by").annotate(n=Count("id"))),
            active_versions=ModelVersion.objects.active().order_by("direction", "kind"),
        )
    return render(request, "home.html", context)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness + database reachability, for load balancers and the set-up script."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # report, don't crash: this is what a probe wants to read
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
