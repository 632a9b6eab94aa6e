"""Reject oversized bodies before anything reads them; answer 503 while the database is down."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.log import log_response

from boundary.errors import DATABASE_RETRY_AFTER_S, error_body

# The one place a large body is expected: a model archive uploaded on the models page (staff
# only; the view streams it to disk and checks every byte). Everything else keeps the API limit.
ARCHIVE_UPLOAD_PATH = "/models/import"


class RequestSizeLimitMiddleware:
    """413 with a JSON body when Content-Length exceeds VALENCE_MAX_REQUEST_BYTES
    (VALENCE_ARCHIVE_MAX_BYTES for a model archive upload).

    DRF's parsers read the request stream directly, bypassing Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the limit is enforced here for every view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = (
            settings.VALENCE_ARCHIVE_MAX_BYTES
            if request.path_info == ARCHIVE_UPLOAD_PATH
            else settings.VALENCE_MAX_REQUEST_BYTES
        )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(
                error_body("bad_request", "Content-Length must be an integer."), status=400
            )
        if length > limit:
            return JsonResponse(
                error_body(
                    "payload_too_large",
                    f"Request body is {length} bytes; the limit is {limit}.",
                    limit_bytes=limit,
                ),
                status=413,
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A page whose database cannot be reached answers 503 with Retry-After, not a 500.

    The API's views do this in their exception handler (boundary.errors); this covers every
    other view: the console, the dashboards, the admin. The page is rendered without the
    database (no user, no session, no context processors), and the outage is a warning.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                error_body(
                    "database_unavailable",
                    "The database is unavailable; retry shortly.",
                    retry_after_s=DATABASE_RETRY_AFTER_S,
                ),
                status=503,
            )
        else:
            page = render_to_string("503.html", {"retry_after_s": DATABASE_RETRY_AFTER_S})
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        log_response(
            "%s: %s (%s: %s)",
            response.reason_phrase,
            request.path,
            type(exception).__name__,
            str(exception)[:200],
            response=response,
            request=request,
            level="warning",
        )
        return response
