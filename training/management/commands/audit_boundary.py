from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from boundary.models import ModelVersion
from training.audit import audit_overview, do_audit_pass


class Command(BaseCommand):
    help = (
        "Run one pass of the live quality audit now (the django-q2 schedule runs it every "
        "minute), then print each active version's live agreement beside its promise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status", action="store_true", help="Only print the numbers; ask the LLM nothing."
        )

    def handle(self, *args: Any, status: bool, **options: Any) -> None:
        if not status:
            self.stdout.write(str(do_audit_pass()))
        overview = audit_overview(list(ModelVersion.objects.active().order_by("direction")))
        state = overview.state
        if state.enabled:
            self.stdout.write(
                f"live audit on: rate {_pct(state.rate, 2)}, ${overview.spent_today:.4f} of "
                f"${state.daily_usd:.2f} spent today"
            )
        else:
            self.stdout.write(f"live audit off: {state.off_reason}")
        for version, live in overview.rows:
            measured = _pct(live.agreement)
            if live.interval:
                measured += f" (95 % CI {_pct(live.interval[0])}–{_pct(live.interval[1])})"
            self.stdout.write(
                f"v{version.pk} {version.direction}/{version.kind}: live {measured}, "
                f"{live.agreed}/{live.audits} agreed, {live.failed} failed, {live.skipped} "
                f"skipped; promised {_pct(live.promise)}, target {_pct(live.target, 0)}"
            )


def _pct(share: float | None, digits: int = 1) -> str:
    return "–" if share is None else f"{share * 100:.{digits}f} %"
