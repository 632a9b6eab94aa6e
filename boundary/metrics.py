"""Prometheus metrics: what the service counts as it runs, and the `/metrics` endpoint.

Counted in each process as things happen (no query on the request path): HTTP requests per
route template, each stored cascade call, each cascade stage's outcome and time, LLM errors.
Computed from the database only when scraped (one small aggregate each): the last hour's
fallback rate, model versions by training status, the active version of each stage.

Gunicorn runs several processes. With PROMETHEUS_MULTIPROC_DIR set (bin/serve sets it before
the web server and the worker start) every process writes its samples to files there and the
endpoint sums them all, whichever process answers the scrape; unset, it serves this process's.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from boundary.errors import error_body
from boundary.models import BoundaryCall, FallbackReason, ModelVersion, ServedBy, VersionStatus

logger = logging.getLogger(__name__)

# Seconds; the top buckets catch LLM fallbacks (a teacher call with retries takes seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STAGE_OUTCOMES = frozenset({"sure", "unsure", "error", "loading", "answered", "hit", "miss"})

HTTP_REQUESTS = Counter(
    "valence_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "valence_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
CASCADE_CALLS = Counter(
    "valence_cascade_calls",
    "Stored cascade calls by who served them, the stage and version of the local answer "
    "('teacher' / 'none' and '' when there was none) and why the LLM was asked.",
    ["direction", "served_by", "stage", "version", "fallback_reason"],
)
STAGE_OUTCOMES = Counter(
    "valence_cascade_stage_outcomes",
    "Each stage the cascade asked and how it ended: sure, unsure, error, loading (students; "
    "loading: passed over while it loads in the background); "
    "answered, error (teacher, version '').",
    ["direction", "stage", "version", "outcome"],
)
STAGE_LATENCY = Histogram(
    "valence_cascade_stage_duration_seconds",
    "Time one cascade stage took (a student's inference, or the LLM call with its retries).",
    ["direction", "stage"],
    buckets=LATENCY_BUCKETS,
)
TEACHER_ERRORS = Counter(
    "valence_teacher_errors",
    "Cascade calls on which the LLM failed, by its error code (rate_limited, timeout, ...).",
    ["direction", "code"],
)


# --- Recording (called on the request path: in-process counters only). ---


def record_call(call: BoundaryCall) -> None:
    """Count one stored cascade call (the cascade calls this once per call it stores)."""
    model_version = call.model_version  # the instance the cascade saved with: no query
    if model_version is not None:
        agreed = "committee" in (call.diagnostics or {})  # answered with the encoder before it
        stage, version = ("committee" if agreed else model_version.kind), str(model_version.pk)
    else:
        stages: dict[str, str] = {ServedBy.TEACHER: "teacher", ServedBy.MEMORY: "memory"}
        stage, version = stages.get(call.served_by, "none"), ""
    CASCADE_CALLS.labels(call.direction, call.served_by, stage, version, call.fallback_reason).inc()
    if call.teacher_error:
        TEACHER_ERRORS.labels(call.direction, call.teacher_error).inc()


def record_stage(
    direction: str, stage: str, version: int | None, outcome: str, seconds: float
) -> None:
    """Count one cascade stage; a teacher's error code counts as outcome "error"."""
    outcome = outcome if outcome in _STAGE_OUTCOMES else "error"
    STAGE_OUTCOMES.labels(direction, stage, "" if version is None else str(version), outcome).inc()
    STAGE_LATENCY.labels(direction, stage).observe(seconds)


class RequestMetricsMiddleware:
    """Counts and times every request under its route template, never the raw path, so that
    `/api/v1/calls/1` and `/api/v1/calls/2` are one series (`/api/v1/calls/<int:pk>`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_label(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route, method).observe(elapsed)
        return response


def route_label(request: HttpRequest) -> str:
    """The matched URL pattern ("/api/v1/calls/<int:pk>"); "static" for files WhiteNoise
    served before routing; "unmatched" for anything else no route matched (404s, refusals)."""
    match = request.resolver_match  # set by URL resolution, inside get_response
    if match is not None:
        return "/" + match.route
    if settings.STATIC_URL and request.path_info.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


# --- Scrape-time values, read from the database. ---


class DatabaseCollector:
    """Service-wide figures the database holds, computed once per scrape (never per request)."""

    def collect(self) -> Iterator[Metric]:
        try:
            families = [*self._fallback_rate(), *self._model_versions()]
        except DatabaseError:
            logger.exception("metrics: database figures unavailable")
            families = []
        up = GaugeMetricFamily(
            "valence_metrics_database_up", "1 if the scrape-time database figures were read."
        )
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _fallback_rate(self) -> list[Metric]:
        # The dashboards' definition (review/metrics.py): live calls exclude imported pairs.
        since = timezone.now() - timedelta(hours=1)
        rows = (
            BoundaryCall.objects.filter(created_at__gte=since)
            .exclude(served_by=ServedBy.IMPORTED)
            .order_by()
            .values("direction")
            .annotate(calls=Count("id"), fallbacks=Count("id", filter=~Q(fallback_reason="")))
        )
        calls = GaugeMetricFamily(
            "valence_live_calls_last_hour",
            "Live calls (imported pairs excluded) stored in the last hour.",
            labels=["direction"],
        )
        rate = GaugeMetricFamily(
            "valence_fallback_rate_last_hour",
            "Share of the last hour's live calls on which the LLM was asked (a fallback reason: "
            + ", ".join(FallbackReason.values)
            + "); absent without calls.",
            labels=["direction"],
        )
        for row in rows:
            calls.add_metric([row["direction"]], row["calls"])
            if row["calls"]:
                rate.add_metric([row["direction"]], row["fallbacks"] / row["calls"])
        return [calls, rate]

    def _model_versions(self) -> list[Metric]:
        counts = (
            ModelVersion.objects.order_by()
            .values_list("direction", "kind", "status")
            .annotate(n=Count("id"))
        )
        by_stage: dict[tuple[str, str], dict[str, int]] = {}
        for direction, kind, status, n in counts:
            by_stage.setdefault((direction, kind), {})[status] = n
        versions = GaugeMetricFamily(
            "valence_model_versions",
            "Model versions by training status (queued, training, evaluating: a training in "
            "flight; ready; failed; retired), per direction and kind.",
            labels=["direction", "kind", "status"],
        )
        for (direction, kind), statuses in sorted(by_stage.items()):
            for status in VersionStatus.values:  # zeros too, so an alert can compare
                versions.add_metric([direction, kind, status], statuses.get(status, 0))
        active = GaugeMetricFamily(
            "valence_active_model_version",
            "The id of the version serving each direction and kind (absent: none serves).",
            labels=["direction", "kind"],
        )
        for direction, kind, pk in (
            ModelVersion.objects.active().order_by().values_list("direction", "kind", "pk")
        ):
            active.add_metric([direction, kind], pk)
        return [versions, active]


def scrape_registry() -> CollectorRegistry:
    """Every process's samples (or this one's) plus the database figures, for one scrape."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    registry.register(DatabaseCollector())
    return registry


# --- The endpoint. ---


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format. With VALENCE_METRICS_TOKEN set, only `Authorization: Bearer
    <token>` may read it; without, only a client on this machine that no proxy relayed."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token = settings.VALENCE_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return None
        response = JsonResponse(
            error_body("authentication_failed", "Send Authorization: Bearer <metrics token>."),
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _is_loopback(request.META.get("REMOTE_ADDR", "")) and not _relayed(request):
        return None
    return JsonResponse(
        error_body(
            "forbidden",
            "Metrics are served to this machine only; set VALENCE_METRICS_TOKEN to scrape "
            "from elsewhere.",
        ),
        status=403,
    )


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _relayed(request: HttpRequest) -> bool:
    # A proxy on this machine connects from loopback on behalf of anyone: it is not local.
    return "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META
