"""One error shape for the whole API: {"error": {"code", "message", ...}}.

Clients branch on `code` (stable, snake_case); `message` is for people; `fields` maps each
invalid input path to its problems.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.log import log_response
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_json",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid_input",
}

# What a client is told to wait while the database cannot be reached: a restart or a failover
# takes seconds, and connections are re-established on the next request.
DATABASE_RETRY_AFTER_S = 5


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    wait: float | None = None  # seconds; DRF's exception_handler turns it into Retry-After

    def __init__(self, message: str, *, code: str, extra: dict[str, Any]) -> None:
        super().__init__(message, code)
        self.error_code = code
        self.extra = extra


class Conflict(exceptions.APIException):
    """A write based on what the client saw, which has changed since (409)."""

    status_code: int = status.HTTP_409_CONFLICT
    default_code = "stale_revision"

    def __init__(self, message: str, *, code: str, extra: dict[str, Any]) -> None:
        super().__init__(message, code)
        self.error_code = code
        self.extra = extra


class PreconditionRequired(Conflict):
    """A write that could overwrite someone else's must say what it saw (428, RFC 6585)."""

    status_code = 428
    default_code = "revision_required"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Mirror DRF's own conversion of Django's exceptions so the mapping below sees DRF types.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError):
        exc = database_unavailable(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers (in JSON for /api/)
    assert isinstance(exc, exceptions.APIException)  # the only kind DRF's handler answers
    if isinstance(exc, ServiceUnavailable):
        response.data = error_body(exc.error_code, str(exc.detail), **exc.extra)
        _log_as_warning(response, context, cause=exc.__cause__)
        return response
    if isinstance(exc, Conflict):
        response.data = error_body(exc.error_code, str(exc.detail), **exc.extra)
        return response
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            _flatten(exc.detail)
            if isinstance(exc.detail, dict)
            else {"non_field_errors": exc.detail}
        )
        response.data = error_body(code, _summary(fields), fields=fields)
    elif isinstance(exc, exceptions.Throttled):
        # Throttled.__init__ sets self.wait; the stubs declare it only as an __init__ argument.
        wait = exc.wait  # type: ignore[attr-defined]
        response.data = error_body(code, str(exc.detail), retry_after_s=wait)
    else:
        response.data = error_body(code, str(exc.detail))
    return response


def database_unavailable(exc: OperationalError | InterfaceError) -> ServiceUnavailable:
    """The database cannot be reached (restarting, failing over, out of connections): a 503 to
    retry, not a 500. Integrity and programming errors stay 500s, as retrying would not help."""
    error = ServiceUnavailable(
        "The database is unavailable; retry shortly.",
        code="database_unavailable",
        extra={"retry_after_s": DATABASE_RETRY_AFTER_S},
    )
    error.wait = DATABASE_RETRY_AFTER_S  # DRF turns this into a Retry-After header
    error.__cause__ = exc
    return error


def _log_as_warning(
    response: Response, context: dict[str, Any], *, cause: BaseException | None
) -> None:
    """A 503 by design (the LLM or the database is down) is a warning, not an error.

    Django's request logger reports every 5xx at ERROR unless the response says it has been
    logged; log_response logs it here at WARNING and marks it so.
    """
    request = context["request"]
    why = f" ({type(cause).__name__}: {str(cause)[:200]})" if cause else ""
    log_response(
        "%s: %s%s",
        response.reason_phrase,
        request.path,
        why,
        response=response,
        request=getattr(request, "_request", request),  # the HttpRequest under DRF's Request
        level="warning",
    )


def _flatten(detail: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"triples": {"triples[0].subject": [...]}} -> {"triples[0].subject": [...]}."""
    flat: dict[str, Any] = {}
    for key, value in detail.items():
        path = key if not prefix or key.startswith(prefix) else f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _summary(fields: Any) -> str:
    """First problem as a sentence, e.g. "text: This field may not be blank."."""
    path, problem = _first_problem(fields, "")
    return f"{path}: {problem}" if path else str(problem)


def _first_problem(node: Any, path: str) -> tuple[str, str]:
    if isinstance(node, dict) and node:
        key, value = next(iter(node.items()))
        return _first_problem(value, f"{path}.{key}" if path else str(key))
    if isinstance(node, list) and node:
        return _first_problem(node[0], path)
    return path, str(node)


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", f"No such URL: {request.path}"), status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", "Unexpected server error; it has been logged."), status=500
    )
