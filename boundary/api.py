"""REST API v1: thin views that validate, call the cascade or a service, and serialise."""

from __future__ import annotations

import re
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from boundary import cascade
from boundary.errors import Conflict, PreconditionRequired, ServiceUnavailable
from boundary.filters import BoundaryCallFilter, ModelVersionFilter
from boundary.models import BoundaryCall, BoundaryCallQuerySet, ModelVersion
from boundary.serializers import (
    BoundaryCallSerializer,
    DecomposeRequestSerializer,
    DecomposeResponseSerializer,
    ErrorResponseSerializer,
    FeedbackSerializer,
    ModelVersionSerializer,
    RecomposeRequestSerializer,
    RecomposeResponseSerializer,
)
from boundary.services import StaleReview, do_record_feedback
from boundary.teacher import TeacherRateLimited

_ERROR = OpenApiResponse(ErrorResponseSerializer, description="An error; `code` says which.")
# What every POST can answer besides its own: bad input (400), no or a bad token (401), a body
# too large (413) or not JSON (415), over the rate (429).
_ERRORS = {400: _ERROR, 401: _ERROR, 413: _ERROR, 415: _ERROR, 429: _ERROR}


# A review_revision as an entity tag: "3", W/"3" or a bare 3, between optional spaces or tabs.
IF_MATCH_PATTERN = r'^[ \t]*(W/)?("[0-9]{1,10}"|[0-9]{1,10})[ \t]*$'


def _unserved(exc: cascade.Unserved) -> ServiceUnavailable:
    error = ServiceUnavailable(
        "No local model could answer and the LLM is unavailable; the call was stored.",
        code="teacher_unavailable",
        extra={
            "reason": exc.cause.code,
            "fallback_reason": exc.call.fallback_reason,
            "call_id": exc.call.pk,
        },
    )
    if isinstance(exc.cause, TeacherRateLimited) and exc.cause.retry_after_s:
        error.wait = exc.cause.retry_after_s  # DRF turns this into a Retry-After header
    return error


class _CascadeView(APIView):
    """Validate → ask the cascade → serialise; the two directions differ only in their shapes."""

    request_serializer: type[serializers.Serializer[dict[str, Any]]]
    response_serializer: type[serializers.Serializer[BoundaryCall]]

    def serve(self, data: dict[str, Any], client: Any) -> BoundaryCall:
        raise NotImplementedError

    def post(self, request: Request) -> Response:
        data = self.request_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            call = self.serve(data.validated_data, request.user)
        except cascade.Unserved as exc:
            raise _unserved(exc) from exc
        return Response(self.response_serializer(call).data)


@extend_schema_view(
    post=extend_schema(
        request=DecomposeRequestSerializer,
        responses={200: DecomposeResponseSerializer, 503: _ERROR, **_ERRORS},
        summary="Text → triples",
    )
)
class DecomposeView(_CascadeView):
    request_serializer = DecomposeRequestSerializer
    response_serializer = DecomposeResponseSerializer

    def serve(self, data: dict[str, Any], client: Any) -> BoundaryCall:
        return cascade.decompose(data["text"], client=client)


@extend_schema_view(
    post=extend_schema(
        request=RecomposeRequestSerializer,
        responses={200: RecomposeResponseSerializer, 503: _ERROR, **_ERRORS},
        summary="Triples → text",
    )
)
class RecomposeView(_CascadeView):
    request_serializer = RecomposeRequestSerializer
    response_serializer = RecomposeResponseSerializer

    def serve(self, data: dict[str, Any], client: Any) -> BoundaryCall:
        return cascade.recompose(data["triples"], client=client)


class FeedbackView(APIView):
    @extend_schema(
        request=FeedbackSerializer,
        parameters=[
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                pattern=IF_MATCH_PATTERN,
                description='The review_revision the feedback is based on, e.g. "3" (or the '
                "body's `revision`).",
            )
        ],
        responses={
            200: BoundaryCallSerializer,
            404: _ERROR,
            409: OpenApiResponse(
                ErrorResponseSerializer, description="stale_revision: the call was reviewed since"
            ),
            428: OpenApiResponse(
                ErrorResponseSerializer, description="revision_required: the call has been reviewed"
            ),
            **_ERRORS,
        },
        summary="Score, correct, accept or reject a call",
    )
    def post(self, request: Request, pk: int) -> Response:
        call = get_object_or_404(BoundaryCall.objects.visible_to(request.user), pk=pk)
        data = FeedbackSerializer(data=request.data, context={"call": call})
        data.is_valid(raise_exception=True)
        fields: dict[str, Any] = data.validated_data
        seen = fields.get("revision", _if_match(request))
        if seen is None and call.review_revision > 0:
            raise PreconditionRequired(
                f"Call {call.pk} has been reviewed; send the review_revision your feedback is "
                "based on (body `revision` or If-Match).",
                code="revision_required",
                extra={"review_revision": call.review_revision},
            )
        try:
            call = do_record_feedback(
                call,
                quality_score=fields.get("quality_score"),
                corrected_output=fields.get("corrected_triples", fields.get("corrected_text")),
                verdict=fields.get("verdict"),
                acting_user=request.user,
                expected_revision=seen,
            )
        except StaleReview as stale:
            raise Conflict(
                f"Call {call.pk} was reviewed since revision {seen}; reload it and decide again.",
                code="stale_revision",
                extra={"review_revision": stale.call.review_revision},
            ) from None
        response = Response(BoundaryCallSerializer(call).data)
        response["ETag"] = f'"{call.review_revision}"'
        return response


def _if_match(request: Request) -> int | None:
    """The revision in an If-Match header ("3", W/"3" or 3); a malformed one is a 400."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    if re.fullmatch(IF_MATCH_PATTERN, raw) is None:
        raise serializers.ValidationError({"If-Match": ['Must be a review_revision, e.g. "3".']})
    return int(raw.strip(" \t").removeprefix("W/").strip('"'))


def _visible_calls(view: generics.GenericAPIView[BoundaryCall]) -> BoundaryCallQuerySet:
    calls = BoundaryCall.objects.all()
    if getattr(view, "swagger_fake_view", False):  # schema generation has no user
        return calls
    return calls.visible_to(view.request.user)


class CallPagination(PageNumberPagination):
    """`page_size`: empty means the default; 1 to 500 (larger: 500); anything else is a 400."""

    page_size_query_param = "page_size"
    page_size_query_description = "Results per page: 1 to 500 (more: 500); empty: the default."
    max_page_size = 500

    def get_page_size(self, request: Request) -> int | None:
        # DRF's own silently falls back to the default for "0", "-1", "null" or "abc".
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
        if not digits:
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        # More digits than any page size needs would only slow int() down.
        return self.max_page_size if len(digits) > 6 else min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1  # 0 and below are a 400
        return parameters


# What every read route can answer besides 200: a bad filter or page size (400), no or a bad
# token (401), a page past the end (404), over the rate (429).
_READ_ERRORS = {400: _ERROR, 401: _ERROR, 404: _ERROR, 429: _ERROR}


@extend_schema_view(get=extend_schema(responses={200: BoundaryCallSerializer, **_READ_ERRORS}))
class CallListView(generics.ListAPIView[BoundaryCall]):
    serializer_class = BoundaryCallSerializer
    filterset_class = BoundaryCallFilter
    pagination_class = CallPagination
    queryset = BoundaryCall.objects.all()

    def get_queryset(self) -> BoundaryCallQuerySet:
        return _visible_calls(self)


@extend_schema_view(
    get=extend_schema(
        responses={200: BoundaryCallSerializer, 401: _ERROR, 404: _ERROR, 429: _ERROR}
    )
)
class CallDetailView(generics.RetrieveAPIView[BoundaryCall]):
    serializer_class = BoundaryCallSerializer
    queryset = BoundaryCall.objects.all()

    def get_queryset(self) -> BoundaryCallQuerySet:
        return _visible_calls(self)


@extend_schema_view(get=extend_schema(responses={200: ModelVersionSerializer, **_READ_ERRORS}))
class ModelVersionListView(generics.ListAPIView[ModelVersion]):
    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilter
    queryset = ModelVersion.objects.with_recalibration_state()
