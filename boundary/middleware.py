"""Reject oversized bodies before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from boundary.errors import error_body

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
