"""The few non-API pages of the boundary app."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from boundary import warming
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
    """Liveness: the process answers. Nothing else is checked, so a database blip never makes
    an orchestrator restart healthy processes; `/readyz` says whether to send traffic."""
    return JsonResponse({"status": "ok"})


# Whether this process has answered ready before: a version loading then is a promotion being
# picked up (stay in rotation; the cascade passes over it meanwhile), not a cold start.
_was_ready = False


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, the job broker, and every active model loads in this process.

    A load balancer should send traffic only where this is 200. A model that cannot load makes
    the process not ready (it would fall back to the LLM for every call, at full cost); no active
    model at all is ready (the LLM answers, as on a fresh install). A model still loading
    (boundary.warming; the probe never waits for it) makes a process that has never been ready
    not ready yet, and leaves one that has been ready in rotation ("warming"): after a
    promotion, every host loads the new version at once, and none should leave the rotation for
    it. A broker (Redis) that does not answer is reported but keeps it ready ("degraded"): every
    host shares that Redis, the API serves without it (throttling fails open,
    valence_site.cache), and taking every host out of rotation would turn a degraded service
    into an outage.
    """
    global _was_ready
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this is what a probe wants to read
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    checks["broker"] = _broker_check()
    models = {
        f"v{version.pk} {version.direction}/{version.kind}": warming.state(version.student_spec())
        for version in ModelVersion.objects.active().order_by("direction", "kind")
    }
    failed = any(value.startswith("error") for value in models.values())
    loading = any(value == "loading" for value in models.values())
    ready = not failed and (not loading or _was_ready)
    _was_ready = _was_ready or ready
    if not ready:
        status = "error" if failed else "loading"
    elif loading:
        status = "warming"
    else:
        status = "ok" if checks["broker"] == "ok" else "degraded"
    return JsonResponse({"status": status, **checks, **models}, status=200 if ready else 503)


def _broker_check() -> str:
    """django-q2's broker: Redis answers a ping; the ORM broker is the database just checked."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return "ok"
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        return f"error: {str(exc)[:200]}"
    return "ok"
