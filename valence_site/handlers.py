"""Error pages: JSON under /api/ (clients parse it), Django's HTML pages elsewhere.

Gunicorn answers some malformed requests itself (414 URI too long, 431 headers too large)
before Django sees them; those stay gunicorn's plain pages.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from boundary.errors import error_body, json_404, json_500


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refused before any view: a bad Host header, a body over the limit."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            error_body("payload_too_large", "The request body is larger than allowed."),
            status=413,
        )
    return JsonResponse(
        error_body("bad_request", "The request was refused (check the Host header)."), status=400
    )


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to do this."), status=403
        )
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_500(request)
    return defaults.server_error(request)
