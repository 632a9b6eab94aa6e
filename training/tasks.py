"""django-q2 tasks: plain functions taking primitive ids (see STYLE.md)."""

from __future__ import annotations

from training import committee_refresh
from training.audit import do_audit_pass
from training.pipeline import run_training
from training.recalibration import queue_due_recalibrations, run_recalibration
from training.runs import reap_dead_runs
from training.trigger import queue_due_trainings


def train_version(version_id: int) -> str:
    version = run_training(version_id)
    return f"v{version.pk} {version.status}"


def recalibrate_version(recalibration_id: int) -> str:
    recalibration = run_recalibration(recalibration_id)
    return f"v{recalibration.version_id} {recalibration.status}: {recalibration.outcome}"


def measure_committee(generative_id: int, encoder_id: int) -> str:
    promise = committee_refresh.measure_committee(generative_id, encoder_id)
    if promise is None:
        return f"v{generative_id} with v{encoder_id}: no longer the active pair, or no eval data"
    return f"v{generative_id} with v{encoder_id}: {promise['right']} of {promise['agreed']} right"


def audit_live_calls() -> str:
    """The live quality audit's pass, run every minute by the django-q2 schedule.

    Scheduled rather than enqueued per request: the request path never waits for the LLM.
    """
    return str(do_audit_pass())


def reap_and_queue_trainings() -> str:
    """The training lifecycle's tick, run every minute by the django-q2 schedule.

    A candidate refused only for want of calibration evidence is queued for another look once
    enough new teacher answers exist (training.recalibration), and a serving generative
    decomposer whose committee names another encoder than the active one is measured again
    (training.committee_refresh).

    Reaps first, so a run nobody will finish stops blocking its direction in the same tick
    that queues its successor. Scheduled rather than a signal on every stored call: the
    request path runs no trigger queries, and dead runs are reaped even with no traffic.
    """
    reaped = reap_dead_runs()
    queued = queue_due_trainings()
    recalibrations = queue_due_recalibrations()  # after: a newly queued training goes first
    committee = committee_refresh.queue_committee_measurement()
    parts = [f"reaped v{item.version_id}: {item.reason}" for item in reaped]
    parts += [f"queued v{v.pk} ({v.direction} {v.kind})" for v in queued]
    parts += [f"queued recalibration of v{r.version_id} on {r.evidence}" for r in recalibrations]
    if committee is not None:
        parts.append("queued the committee of v{} with v{}".format(*committee))
    return "; ".join(parts) or "nothing to reap or queue"
