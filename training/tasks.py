"""django-q2 tasks: plain functions taking primitive ids (see STYLE.md)."""

from __future__ import annotations

from training.audit import do_audit_pass
from training.pipeline import run_training


def train_version(version_id: int) -> str:
    version = run_training(version_id)
    return f"v{version.pk} {version.status}"


def audit_live_calls() -> str:
    """The live quality audit's pass, run every minute by the django-q2 schedule.

    Scheduled rather than enqueued per request: the request path never waits for the LLM.
    """
    return str(do_audit_pass())
