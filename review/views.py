"""The review console: a prioritised queue, one claimed item at a time, keyboard-first.

Full pages for the first load; htmx requests get the item panel (and an out-of-band update of
the item's queue row) so moving through the queue never reloads the page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from boundary.models import BoundaryCall, Direction, ModelVersion, ReviewStatus, ServedBy
from boundary.services import StaleReview, do_record_feedback
from review import compare, queue
from review.forms import ReviewForm, read_review_form
from review.roles import REVIEW, requires


class HtmxHttpRequest(HttpRequest):
    """A request as HtmxMiddleware (settings.MIDDLEWARE) leaves it: with `htmx` set."""

    htmx: HtmxDetails


def reads_filters(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pass the view the queue filters of the query string, or answer 400 naming the bad one."""

    @wraps(view)
    def with_filters(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            filters = queue.QueueFilters.from_query(request.GET)
        except queue.InvalidFilter as invalid:
            return HttpResponseBadRequest(str(invalid), content_type="text/plain; charset=utf-8")
        return view(request, filters, *args, **kwargs)

    return with_filters


@require_GET
@requires(REVIEW)
@reads_filters
def console(request: HttpRequest, filters: queue.QueueFilters) -> HttpResponse:
    current = queue.claim_next(request.user, filters)
    return render(
        request,
        "review/console.html",
        {
            **_queue_context(filters),
            **_item_context(request, current, filters),
            "directions": Direction.choices,
            "served_by_choices": ServedBy.choices,
            "statuses": [*ReviewStatus.choices, ("any", "any status")],
            "versions": ModelVersion.objects.order_by("-id").only("id", "direction", "kind")[:50],
        },
    )


@require_GET
@requires(REVIEW)
@reads_filters
def queue_list(request: HttpRequest, filters: queue.QueueFilters) -> HttpResponse:
    return render(request, "review/console.html#queue-list", _queue_context(filters))


@require_GET
@requires(REVIEW)
@reads_filters
def item(request: HtmxHttpRequest, filters: queue.QueueFilters, pk: int) -> HttpResponse:
    call = get_object_or_404(BoundaryCall, pk=pk)
    queue.claim(call.pk, request.user)
    call.refresh_from_db()
    return _panel(request, call, filters)


@require_POST
@requires(REVIEW)
@reads_filters
def act(request: HtmxHttpRequest, filters: queue.QueueFilters, pk: int) -> HttpResponse:
    call = get_object_or_404(BoundaryCall, pk=pk)
    if queue.is_claimed_by_other(call, request.user) and (owner := call.claimed_by) is not None:
        message = f"{owner.get_username()} is reviewing this call; pick another one."
        return _panel(request, call, filters, conflict=message, status=409)
    form = read_review_form(call, request.POST)
    if not form.is_valid:
        return _panel(request, call, filters, form=form, status=422)
    try:
        reviewed = do_record_feedback(
            call,
            quality_score=form.quality_score,
            corrected_output=form.corrected,
            verdict=form.action if form.action in ("accept", "reject") else None,
            acting_user=request.user,
            expected_revision=form.revision,
        )
    except StaleReview as stale:
        call.refresh_from_db()
        return _panel(request, call, filters, conflict=str(stale), status=409)
    if form.action == "score":  # a score alone keeps the reviewer on the item
        queue.claim(reviewed.pk, request.user)
        reviewed.refresh_from_db()
        response = _panel(request, reviewed, filters, saved="Score saved.")
    else:
        following = queue.claim_next(request.user, filters, after=reviewed.pk)
        response = _panel(request, following, filters, saved=f"Call {reviewed.pk} saved.")
    response["HX-Trigger"] = "queueChanged"
    return response


def _panel(
    request: HtmxHttpRequest,
    call: BoundaryCall | None,
    filters: queue.QueueFilters,
    *,
    form: ReviewForm | None = None,
    conflict: str = "",
    saved: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        **_item_context(request, call, filters, form=form),
        "conflict": conflict,
        "saved": saved,
    }
    if request.htmx:
        return render(request, "review/console.html#item-panel", context, status=status)
    return render(
        request,
        "review/console.html",
        {**_queue_context(filters), **context},
        status=status,
    )


def _queue_context(filters: queue.QueueFilters) -> dict[str, Any]:
    rows = list(
        queue.review_queue(filters)
        .select_related("model_version", "claimed_by")
        .only(
            "id",
            "direction",
            "served_by",
            "confidence",
            "review_status",
            "review_priority",
            "created_at",
            "input",
            "claimed_by__username",
            "claimed_until",
            "model_version__id",
            "model_version__kind",
        )[: queue.QUEUE_PAGE]
    )
    return {
        "queue": rows,
        "filters": filters,
        "filter_query": filters.as_query(),
        "now": timezone.now(),
    }


def _item_context(
    request: HttpRequest,
    call: BoundaryCall | None,
    filters: queue.QueueFilters,
    *,
    form: ReviewForm | None = None,
) -> dict[str, Any]:
    if call is None:
        return {"call": None, "filter_query": filters.as_query(), "now": timezone.now()}
    rows = form.rows if form and form.rows else _editor_rows(call)
    sources = call.triple_sources or []
    output_rows = []
    if call.direction == Direction.DECOMPOSITION:
        output_rows = [
            {**triple, "source": sources[i] if i < len(sources) else None}
            for i, triple in enumerate(call.output or [])
        ]
    return {
        "now": timezone.now(),
        "output_rows": output_rows,
        "call": call,
        "filter_query": filters.as_query(),
        "claimed_by_other": queue.is_claimed_by_other(call, request.user),
        "rows": rows,
        "text": form.text if form and form.text else _editor_text(call),
        "errors": form.errors if form else {},
        "comparisons": compare.comparisons(call),
        "round_trip": compare.round_trip_view(call),
    }


def _editor_rows(call: BoundaryCall) -> list[dict[str, str]]:
    if call.direction != Direction.DECOMPOSITION:
        return []
    triples = call.corrected_output if call.corrected_output is not None else call.output
    return [dict(t) for t in triples or []] or [{"subject": "", "predicate": "", "object": ""}]


def _editor_text(call: BoundaryCall) -> str:
    if call.direction != Direction.RECOMPOSITION:
        return ""
    text = call.corrected_output if call.corrected_output is not None else call.output
    return str(text or "")
