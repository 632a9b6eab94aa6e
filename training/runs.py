"""A training run's state changes, and the reaper that ends runs nobody will finish.

A run moves pending → running → succeeded | failed | cancelled, and its version moves
queued → training → evaluating → ready | failed with it. Each move is one `do_*` function
under a transaction that locks the run, so the worker, the reaper and an interrupted
`--sync` never write half a transition or undo each other's. A run that ends badly fails
its version: the database allows one training in flight per direction and kind, and only
a version that left flight lets the next one start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from boundary.models import IN_FLIGHT, ModelVersion, VersionStatus
from training.models import TrainingRun

logger = logging.getLogger(__name__)

# A run whose worker has not reported for this long is presumed dead (killed, OOM, reboot).
STALE_AFTER = timedelta(minutes=30)

ENDED = [TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED]


class RunStateError(RuntimeError):
    """The run is not in the state this transition starts from (another process moved it)."""


def queued_timeout() -> timedelta:
    """How long a queued run may wait for a worker while no worker reports any progress."""
    return timedelta(seconds=settings.VALENCE_QUEUED_TIMEOUT_S)


def log_line(run: TrainingRun, line: str) -> None:
    """Into the run's log (the console shows it) and the process log (bin/serve shows it)."""
    logger.info("v%s %s", run.version_id, line)
    run.append_log(line)


def report_progress(run: TrainingRun, **fields: Any) -> None:
    """Write progress fields with a fresh heartbeat: the reaper's proof that the worker lives."""
    fields["heartbeat_at"] = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)


def do_start_run(run: TrainingRun) -> None:
    """pending → running (version → training); refused unless the run is still pending."""
    with transaction.atomic():
        _lock(run, TrainingRun.Status.PENDING)
        report_progress(run, status=TrainingRun.Status.RUNNING, started_at=timezone.now())
        _set_version_status(run, VersionStatus.TRAINING)


def do_begin_evaluation(run: TrainingRun) -> None:
    """The version is trained and exported; it is now being scored (version → evaluating)."""
    with transaction.atomic():
        _lock(run, TrainingRun.Status.RUNNING)
        report_progress(run)
        _set_version_status(run, VersionStatus.EVALUATING)


def do_succeed_run(run: TrainingRun) -> None:
    """running → succeeded (version → ready): the version may now be promoted."""
    with transaction.atomic():
        _lock(run, TrainingRun.Status.RUNNING)
        report_progress(run, status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now())
        _set_version_status(run, VersionStatus.READY)


def do_fail_run(run: TrainingRun, reason: str, *, status: str = TrainingRun.Status.FAILED) -> bool:
    """Any unfinished run → failed (or cancelled), its reason in `error` and the log.

    The version is failed only while it is in flight, so a run can never fail a version that
    was already promoted. False when the run had already ended (nothing written).
    """
    with transaction.atomic():
        current = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if current.status in ENDED:
            return False
        # No heartbeat: the reaper fails runs too, and it is no sign that a worker lives.
        ended = {"status": status, "error": reason, "finished_at": timezone.now()}
        TrainingRun.objects.filter(pk=run.pk).update(**ended)
        for name, value in ended.items():
            setattr(run, name, value)
        ModelVersion.objects.filter(pk=run.version_id, status__in=IN_FLIGHT).update(
            status=VersionStatus.FAILED, is_active=False, updated_at=timezone.now()
        )
    log_line(run, f"{status}: {reason.splitlines()[0] if reason else ''}")
    return True


def do_cancel_run(run: TrainingRun, reason: str) -> bool:
    """Someone asked the run to stop (cancel-training, Ctrl-C): its version fails, cancelled."""
    return do_fail_run(run, reason, status=TrainingRun.Status.CANCELLED)


@dataclass(frozen=True)
class Reaped:
    version_id: int
    reason: str


def reap_dead_runs() -> list[Reaped]:
    """Fail every run that nobody will finish, so its direction can train again.

    - running runs whose worker has not reported for STALE_AFTER (killed, OOM, reboot);
    - pending runs no worker picked up within VALENCE_QUEUED_TIMEOUT_S, while no worker
      reported any training either: a busy worker's queue may wait, a dead queue may not;
    - versions left in flight by a run that already ended (a crash between two writes).
    """
    now = timezone.now()
    stale = now - STALE_AFTER
    minutes = int(STALE_AFTER.total_seconds() // 60)
    dead: list[tuple[TrainingRun, str]] = [
        (run, f"the worker stopped reporting for {minutes} minutes (killed or restarted?)")
        for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
            Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
        )
    ]
    waited = now - queued_timeout()
    workers_silent = not TrainingRun.objects.filter(heartbeat_at__gte=waited).exists()
    if workers_silent:
        seconds = settings.VALENCE_QUEUED_TIMEOUT_S
        dead += [
            (
                run,
                f"no worker picked it up within {seconds} s (is `valence qcluster` running?)",
            )
            for run in TrainingRun.objects.filter(
                status=TrainingRun.Status.PENDING, created_at__lt=waited
            )
        ]
    reaped = [Reaped(run.version_id, reason) for run, reason in dead if do_fail_run(run, reason)]
    for version in ModelVersion.objects.filter(
        status__in=IN_FLIGHT, training_run__status__in=ENDED
    ).select_related("training_run"):
        reason = f"its run ended ({version.training_run.status}) but the version was in flight"
        if ModelVersion.objects.filter(pk=version.pk, status__in=IN_FLIGHT).update(
            status=VersionStatus.FAILED, is_active=False, updated_at=now
        ):
            reaped.append(Reaped(version.pk, reason))
    for item in reaped:
        logger.warning("reaped the training of v%s: %s", item.version_id, item.reason)
    return reaped


def _lock(run: TrainingRun, expected: str) -> None:
    """Lock the run's row and check it is still where this transition starts."""
    current = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if current.status != expected:
        raise RunStateError(f"v{run.version_id}'s run is {current.status}, not {expected}")


def _set_version_status(run: TrainingRun, status: str) -> None:
    # save() rather than update(): the serving cache listens to ModelVersion's post_save.
    version = ModelVersion.objects.get(pk=run.version_id)
    version.status = status
    version.save(update_fields=["status", "updated_at"])
