"""The review queue: which calls a reviewer sees, in what order, and who holds which one.

Order: `review_priority` (disagreement between student and teacher, degraded answers, other
fallbacks, low confidence; computed when the call is stored) and then newest first, which the
`review_queue_order` index serves directly. A reviewer *claims* the item they open, so two
reviewers never get the same one; a claim lapses after VALENCE_REVIEW_CLAIM_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from boundary.models import BoundaryCall, Direction, ReviewStatus, ServedBy

QUEUE_PAGE = 30
PARAMETERS = ("direction", "served_by", "version", "since", "until", "status", "q")


class InvalidFilter(ValueError):
    """A filter value no query could use; the console answers 400 naming `parameter`."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(parameter, problem)
        self.parameter = parameter
        self.problem = problem

    def __str__(self) -> str:
        return f"Invalid filter {self.parameter!r}: {self.problem}"


@dataclass(frozen=True)
class QueueFilters:
    direction: str = ""
    served_by: str = ""
    version: int | None = None
    since: date | None = None
    until: date | None = None
    status: str = ReviewStatus.UNREVIEWED
    search: str = ""

    @classmethod
    def from_query(cls, query: QueryDict) -> QueueFilters:
        """Unknown or malformed values are ignored (a filter form must never 500).

        A NUL character is not malformed but impossible: no form sends one and no stored text
        holds one (PostgreSQL cannot even compare with it), so it raises InvalidFilter.
        """
        for name in PARAMETERS:
            if any("\x00" in value for value in query.getlist(name)):
                raise InvalidFilter(name, "it contains a NUL character (%00).")
        return cls(
            direction=_choice(query.get("direction"), Direction.values),
            served_by=_choice(query.get("served_by"), ServedBy.values),
            version=_int(query.get("version")),
            since=_date(query.get("since")),
            until=_date(query.get("until")),
            status=_choice(
                query.get("status", ReviewStatus.UNREVIEWED), [*ReviewStatus.values, "any"]
            ),
            search=(query.get("q") or "").strip()[:200],
        )

    def as_query(self) -> str:
        query = QueryDict(mutable=True)
        values = {
            "direction": self.direction,
            "served_by": self.served_by,
            "version": self.version or "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "status": self.status,
            "q": self.search,
        }
        query.update({key: str(value) for key, value in values.items() if value})
        return query.urlencode()

    def apply(self, calls: QuerySet[BoundaryCall]) -> QuerySet[BoundaryCall]:
        calls = calls.exclude(output__isnull=True).exclude(served_by=ServedBy.UNSERVED)
        if self.status != "any":
            calls = calls.filter(review_status=self.status or ReviewStatus.UNREVIEWED)
        if self.direction:
            calls = calls.filter(direction=self.direction)
        if self.served_by:
            calls = calls.filter(served_by=self.served_by)
        if self.version:
            calls = calls.filter(model_version_id=self.version)
        zone = timezone.get_current_timezone()
        if self.since:
            calls = calls.filter(created_at__gte=_day_start(self.since, zone))
        if self.until and self.until < date.max:  # until the last day: no upper bound
            calls = calls.filter(created_at__lt=_day_start(self.until + timedelta(days=1), zone))
        if self.search:
            calls = calls.filter(
                Q(input__icontains=self.search)
                | Q(output__icontains=self.search)
                | Q(corrected_output__icontains=self.search)
            )
        return calls


def review_queue(filters: QueueFilters) -> QuerySet[BoundaryCall]:
    return filters.apply(BoundaryCall.objects.all()).order_by("-review_priority", "-id")


def claim_expiry() -> datetime:
    return timezone.now() + timedelta(seconds=settings.VALENCE_REVIEW_CLAIM_SECONDS)


def is_claimed_by_other(call: BoundaryCall, user: Any) -> bool:
    return (
        call.claimed_by_id is not None
        and call.claimed_by_id != user.pk
        and call.claimed_until is not None
        and call.claimed_until > timezone.now()
    )


def claim(call_id: int, user: Any) -> bool:
    """Claim (or renew) `call_id` for `user` unless someone else holds a live claim.

    One conditional UPDATE: of two reviewers racing for the same item, exactly one wins.
    """
    now = timezone.now()
    free = Q(claimed_by__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=user)
    updated = BoundaryCall.objects.filter(free, pk=call_id).update(
        claimed_by=user, claimed_until=claim_expiry()
    )
    return updated == 1


def claim_next(
    user: Any, filters: QueueFilters, *, after: int | None = None
) -> BoundaryCall | None:
    """The first item of the queue nobody else holds, claimed for `user`."""
    now = timezone.now()
    candidates = review_queue(filters).filter(
        Q(claimed_by__isnull=True) | Q(claimed_until__lt=now) | Q(claimed_by=user)
    )
    if after is not None:
        candidates = candidates.exclude(pk=after)
    for _ in range(5):  # lost races are retried with the next candidates
        with transaction.atomic():
            call = candidates.first()
            if call is None:
                return None
            if claim(call.pk, user):
                call.refresh_from_db()
                return call
    return None


def release(call_id: int, user: Any) -> None:
    BoundaryCall.objects.filter(pk=call_id, claimed_by=user).update(
        claimed_by=None, claimed_until=None
    )


def _day_start(day: date, zone: tzinfo) -> datetime:
    """Midnight starting `day` in `zone`, in UTC (the database's zone). Midnight of 0001-01-01
    east of UTC falls before the first representable instant, which is as good a bound."""
    try:
        return datetime.combine(day, time.min, zone).astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _choice(value: str | None, allowed: list[str]) -> str:
    return value if value in allowed else ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
