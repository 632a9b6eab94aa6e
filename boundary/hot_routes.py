"""The two hot routes without the general stack: token-authenticated JSON POSTs to decompose
and recompose, answered in front of Django's middleware, URL resolver and DRF's dispatch.

Every API call goes through those layers, and they cost more than the rest of a sure local
answer (README, "What a request costs around the model"). This WSGI wrapper answers the plain
case of the two routes that carry the traffic with the same parts the full stack would use: the
same request and response serialisers, the same remembered token (boundary.authentication),
the same rate limit (boundary.throttling), the same cascade and stored call, the same security
headers (Django's own middleware, called for its response hook), and the same metrics.

Anything that is not the plain case is handed to Django untouched, body included, before
anything is stored: another method, content type or path, a token this process has not checked
in the last few seconds, a body Django would refuse, JSON that does not parse or validate, a
refused Host header, plain HTTP where HTTPS is required, a request over the rate. So every
refusal still comes from one place, the full stack, with its error shape. Once the cascade has
run, the call is stored and the answer is given here: a 503 when nobody could answer or the
database is down (the API's own exception handler writes it), a 500 in the API's JSON for an
unexpected error (logged as Django logs one).

VALENCE_HOT_ROUTES=0 sends everything through the full stack.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import get_script_prefix, reverse
from django.utils.log import log_response
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from boundary import api, cascade, metrics
from boundary.authentication import remembered_user
from boundary.errors import api_exception_handler, database_unavailable, json_500
from boundary.throttling import SharedRateThrottle

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_VIEWS: dict[str, type[api._CascadeView]] = {
    "api:decompose": api.DecomposeView,
    "api:recompose": api.RecomposeView,
}
_ALLOW = "POST, OPTIONS"  # what DRF's APIView says on every answer of these views
_ACCEPTED = frozenset({"*/*", "application/json", ""})


class _NotPlain(Exception):
    """This request is for the full stack; nothing has been stored or counted."""


def _never(response: Any) -> HttpResponse:
    raise AssertionError("only the response hooks of these middleware are used")


class HotRoutes:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._views: dict[str, type[api._CascadeView]] | None = None
        self._security = SecurityMiddleware(_never)
        self._frame_options = XFrameOptionsMiddleware(_never)
        self._renderer = JSONRenderer()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        view = self.views().get(environ.get("PATH_INFO", ""))
        if (
            view is None
            or environ.get("REQUEST_METHOD") != "POST"
            or not settings.VALENCE_HOT_ROUTES
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            request, user, data = self._plain_request(environ, view)
        except _NotPlain:
            return self.app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            if not _admitted(user, view):
                raise _NotPlain  # the full stack answers 429 (a refused request is not counted)
        except _NotPlain:
            signals.request_finished.send(sender=self.__class__)
            return self.app(environ, start_response)
        except (OperationalError, InterfaceError) as exc:
            response = self._error(database_unavailable(exc), request)
        else:
            response = self._serve(view, request, user, data)
        return self._finish(request, response, started, start_response)

    def views(self) -> dict[str, type[api._CascadeView]]:
        """PATH_INFO → view, from the URL configuration (resolved once: reverse needs it loaded).
        PATH_INFO has no script prefix; reverse adds the one this thread last saw."""
        if self._views is None:
            self._views = {
                "/" + reverse(name)[len(get_script_prefix()) :]: view
                for name, view in _VIEWS.items()
            }
        return self._views

    def _plain_request(
        self, environ: dict[str, Any], view: type[api._CascadeView]
    ) -> tuple[WSGIRequest, Any, dict[str, Any]]:
        """The request, its user and its validated data, or _NotPlain. Reads the body, and
        puts it back for the full stack to read again."""
        if environ.get("CONTENT_TYPE") != "application/json" or environ.get("QUERY_STRING"):
            raise _NotPlain  # a query string may pick another format (DRF's ?format=)
        if environ.get("HTTP_ACCEPT", "*/*") not in _ACCEPTED:
            raise _NotPlain  # DRF negotiates (and may answer 406)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise _NotPlain from None
        if not 0 < length <= settings.VALENCE_MAX_REQUEST_BYTES:
            raise _NotPlain
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        request = WSGIRequest(environ)
        try:
            request.get_host()  # Django's ALLOWED_HOSTS check
        except DisallowedHost:
            raise _NotPlain from None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            raise _NotPlain
        user = remembered_user(request.META.get("HTTP_AUTHORIZATION", ""))
        if user is None:
            raise _NotPlain
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise _NotPlain from None
        serializer = view.request_serializer(data=data)
        if not serializer.is_valid():
            raise _NotPlain
        return request, user, serializer.validated_data

    def _serve(
        self, view: type[api._CascadeView], request: WSGIRequest, user: Any, data: dict[str, Any]
    ) -> HttpResponse:
        try:
            call = view().serve(data, user)
        except cascade.Unserved as exc:
            return self._error(api._unserved(exc), request)
        except (OperationalError, InterfaceError) as exc:
            return self._error(database_unavailable(exc), request)
        except Exception:
            signals.got_request_exception.send(sender=self.__class__, request=request)
            response = json_500(request)
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
                exception=sys.exc_info()[1],
            )
            return response
        body = self._renderer.render(view.response_serializer(call).data)
        return HttpResponse(body, content_type="application/json")

    def _error(self, exc: APIException, request: WSGIRequest) -> HttpResponse:
        """The API's own error answer (body, status, Retry-After, the warning it logs)."""
        response = api_exception_handler(exc, {"request": request, "view": None})
        assert isinstance(response, Response)  # it answers every APIException
        response.accepted_renderer = self._renderer
        response.accepted_media_type = "application/json"
        response.renderer_context = {}  # type: ignore[attr-defined]
        response.render()
        return response

    def _finish(
        self,
        request: WSGIRequest,
        response: HttpResponse,
        started: float,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        response["Allow"] = _ALLOW
        response["Content-Length"] = str(len(response.content))  # as CommonMiddleware sets it
        response = self._frame_options.process_response(request, response)
        response = self._security.process_response(request, response)
        route = request.path_info
        metrics.HTTP_REQUESTS.labels(route, "POST", str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(route, "POST").observe(time.perf_counter() - started)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        body = response.content
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        response.close()  # sends request_finished, as Django's handler does
        return [body]


def _admitted(user: Any, view: type[api._CascadeView]) -> bool:
    throttle = SharedRateThrottle()
    return throttle.allow_request(SimpleNamespace(user=user), view())  # type: ignore[arg-type]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # as DRF's parser refuses NaN and Infinity
