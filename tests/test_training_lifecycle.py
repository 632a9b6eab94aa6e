"""Every way a training run can die ends in a failed version with its reason, leaves the
active version alone, and frees the direction for the next training (issue 10, item 3)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from boundary.models import BoundaryCall, ModelVersion
from tests.anthropic_mock import tool_message
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from training.models import TrainingRun
from training.pipeline import queue_training, run_training
from training.runs import RunStateError
from training.tasks import reap_and_queue_trainings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch) -> list[TrainingRun]:
    """Record what would be handed to django-q2: no worker ever picks anything up here."""
    handed: list[TrainingRun] = []
    monkeypatch.setattr("training.trigger._enqueue", handed.append)
    return handed


@pytest.fixture
def active(db) -> ModelVersion:
    """The decomposition version serving traffic while its successor trains (and dies)."""
    return ModelVersionFactory(status="ready", is_active=True, data_watermark=0)


def in_flight(version_status: str = "queued", **run_fields) -> ModelVersion:
    version = ModelVersionFactory(status=version_status, data_watermark=0)
    run = TrainingRun.objects.create(version=version, trigger="automatic", **run_fields)
    if "created_at" in run_fields:  # auto_now_add ignores it on create
        TrainingRun.objects.filter(pk=run.pk).update(created_at=run_fields["created_at"])
    return version


def ago(**delta: float):
    return timezone.now() - timedelta(**delta)


def assert_failed_and_freed(version: ModelVersion, active: ModelVersion, reason: str) -> None:
    version.refresh_from_db()
    run = version.training_run
    assert (version.status, version.is_active) == ("failed", False)
    assert run.status in ("failed", "cancelled")
    assert reason in run.error
    assert reason in run.log
    assert run.finished_at is not None
    active.refresh_from_db()
    assert (active.status, active.is_active) == ("ready", True)
    assert ModelVersion.objects.active().get(direction="decomposition") == active
    successor = queue_training("decomposition", trigger="manual", enqueue=False)
    assert successor is not None, "the direction is still blocked"


# --- a queued run that no worker took --------------------------------------------------------


def test_a_queued_run_no_worker_took_is_failed_after_the_timeout(settings, active):
    settings.VALENCE_QUEUED_TIMEOUT_S = 600
    orphan = in_flight("queued", created_at=ago(minutes=11))
    summary = reap_and_queue_trainings()
    assert f"reaped v{orphan.pk}" in summary
    assert_failed_and_freed(orphan, active, "no worker picked it up within 600 s")


def test_a_queued_run_within_the_timeout_is_left_alone(settings, active):
    settings.VALENCE_QUEUED_TIMEOUT_S = 600
    waiting = in_flight("queued", created_at=ago(minutes=9))
    assert reap_and_queue_trainings() == "nothing to reap or queue"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.training_run.status) == ("queued", "pending")


def test_a_queued_run_waiting_behind_a_busy_worker_is_left_alone(settings, active):
    """One worker training for hours is a queue that moves, not a dead one."""
    settings.VALENCE_QUEUED_TIMEOUT_S = 600
    waiting = in_flight("queued", created_at=ago(hours=2))
    busy = ModelVersionFactory(direction="recomposition", status="training")
    TrainingRun.objects.create(
        version=busy, trigger="automatic", status="running", heartbeat_at=ago(minutes=1)
    )
    assert reap_and_queue_trainings() == "nothing to reap or queue"
    waiting.refresh_from_db()
    assert waiting.status == "queued"

    TrainingRun.objects.filter(version=busy).update(heartbeat_at=ago(hours=1))  # it died too
    reap_and_queue_trainings()
    assert_failed_and_freed(waiting, active, "no worker picked it up")


def test_the_tick_that_reaps_a_queued_run_queues_its_successor(
    settings, active, _no_worker, django_capture_on_commit_callbacks
):
    settings.VALENCE_TRAIN_EVERY = 1
    settings.VALENCE_QUEUED_TIMEOUT_S = 600
    BoundaryCallFactory()
    with django_capture_on_commit_callbacks(execute=True):
        reap_and_queue_trainings()
    first = ModelVersion.objects.get(status="queued")
    TrainingRun.objects.filter(version=first).update(created_at=ago(hours=1))
    BoundaryCallFactory(input="Ana uses Vim.")  # new pairs since the orphan claimed its data
    with django_capture_on_commit_callbacks(execute=True):
        summary = reap_and_queue_trainings()
    first.refresh_from_db()
    assert first.status == "failed"
    second = ModelVersion.objects.get(status="queued")
    assert summary == (
        f"reaped v{first.pk}: {first.training_run.error}; "
        f"queued v{second.pk} (decomposition generative)"
    )
    assert [run.version_id for run in _no_worker] == [first.pk, second.pk]


def test_a_worker_that_picks_up_a_reaped_run_does_not_train_it(settings, active):
    settings.VALENCE_QUEUED_TIMEOUT_S = 600
    orphan = in_flight("queued", created_at=ago(hours=1))
    reap_and_queue_trainings()
    with pytest.raises(RunStateError, match="is failed, not pending"):
        run_training(orphan.pk)
    orphan.refresh_from_db()
    assert (orphan.status, orphan.training_run.status) == ("failed", "failed")


# --- a killed worker -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["training", "evaluating"])
def test_a_run_whose_worker_was_killed_is_failed(status, active):
    dead = in_flight(status, status="running", heartbeat_at=ago(minutes=31))
    summary = reap_and_queue_trainings()
    assert f"reaped v{dead.pk}" in summary
    assert_failed_and_freed(dead, active, "the worker stopped reporting for 30 minutes")
    assert dead.training_run.status == "failed"


def test_a_run_whose_worker_reports_is_left_alone(active):
    alive = in_flight("training", status="running", heartbeat_at=ago(minutes=29))
    assert reap_and_queue_trainings() == "nothing to reap or queue"
    alive.refresh_from_db()
    assert (alive.status, alive.training_run.status) == ("training", "running")


def test_a_version_left_in_flight_by_an_ended_run_is_failed(active):
    stuck = in_flight("evaluating", status="succeeded", finished_at=ago(minutes=1))
    summary = reap_and_queue_trainings()
    assert f"reaped v{stuck.pk}: its run ended (succeeded)" in summary
    stuck.refresh_from_db()
    assert (stuck.status, stuck.is_active) == ("failed", False)
    assert queue_training("decomposition", trigger="manual", enqueue=False) is not None


def test_the_reaper_never_fails_a_promoted_version(active):
    """A stale run whose version is already ready (and active) loses its run, not its alias."""
    TrainingRun.objects.create(
        version=active, trigger="automatic", status="running", heartbeat_at=ago(hours=3)
    )
    reap_and_queue_trainings()
    active.refresh_from_db()
    assert (active.status, active.is_active) == ("ready", True)
    assert active.training_run.status == "failed"


# --- an interrupted run (Ctrl-C during --sync, a stopping process) ---------------------------


@pytest.fixture
def interrupting_trainer(monkeypatch, tiny_setup, memorising_split):
    """The trainer reports a step, then the operator presses Ctrl-C (or the process exits)."""
    from training.trainers import generative

    BoundaryCallFactory(split="train")
    BoundaryCallFactory(split="eval")
    seen: dict[str, str] = {}

    def trainer(base, examples, artifact, config, *, on_progress, should_stop):
        on_progress(SimpleNamespace(step=1, total_steps=10, loss=2.0, eta_s=9.0))
        seen["run status while training"] = TrainingRun.objects.get().status
        raise seen.get("raise", KeyboardInterrupt)()  # type: ignore[operator]

    monkeypatch.setattr(generative, "train_lora", trainer)
    return seen


def test_ctrl_c_during_sync_training_cancels_the_run_and_frees_the_direction(
    interrupting_trainer, active
):
    with pytest.raises(CommandError, match="interrupted") as stopped:
        call_command("train_boundary", "--direction", "decomposition", "--sync")
    assert stopped.value.returncode == 130
    assert interrupting_trainer["run status while training"] == "running"
    version = ModelVersion.objects.exclude(pk=active.pk).get()
    assert version.training_run.status == "cancelled"
    assert version.training_run.step == 1
    assert_failed_and_freed(version, active, "interrupted (KeyboardInterrupt, Ctrl-C)")


def test_run_training_records_a_keyboard_interrupt_before_re_raising_it(
    interrupting_trainer, active
):
    version = queue_training("decomposition", trigger="manual", enqueue=False)
    with pytest.raises(KeyboardInterrupt):
        run_training(version.pk)
    assert_failed_and_freed(version, active, "interrupted (KeyboardInterrupt")


def test_a_process_exit_during_training_fails_the_run_and_re_raises(interrupting_trainer, active):
    interrupting_trainer["raise"] = SystemExit  # type: ignore[assignment]
    version = queue_training("decomposition", trigger="manual", enqueue=False)
    with pytest.raises(SystemExit):
        run_training(version.pk)
    assert_failed_and_freed(version, active, "the process stopped (SystemExit)")
    assert version.training_run.status == "failed"


# --- the schedule, and a request path without the trigger -------------------------------------


def test_the_lifecycle_is_scheduled_every_minute():
    schedule = Schedule.objects.get(name="training lifecycle")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)
    assert import_string(schedule.func) is reap_and_queue_trainings


def test_the_scheduled_task_queues_a_due_training_once(
    settings, _no_worker, django_capture_on_commit_callbacks
):
    settings.VALENCE_TRAIN_EVERY = 2
    BoundaryCallFactory()
    BoundaryCallFactory(direction="recomposition", input=[["Ana", "uses", "Vim"]], output="x")
    assert reap_and_queue_trainings() == "nothing to reap or queue"
    BoundaryCallFactory(input="Ana uses Vim.")
    with django_capture_on_commit_callbacks(execute=True):
        summary = reap_and_queue_trainings()
    version = ModelVersion.objects.get()
    assert summary == f"queued v{version.pk} (decomposition generative)"
    assert (version.status, version.training_run.trigger) == ("queued", "automatic")
    BoundaryCallFactory(input="Ravi leads Atlas.")
    assert reap_and_queue_trainings() == "nothing to reap or queue"  # one in flight already
    assert [run.version_id for run in _no_worker] == [version.pk]


def test_storing_a_call_runs_no_trigger(
    settings, api, teacher_api, django_capture_on_commit_callbacks
):
    """The request that stores an LLM answer neither counts pairs nor queues a training,
    even when that answer is the one that makes a training due."""
    settings.VALENCE_TRAIN_EVERY = 1
    teacher_api.return_value = httpx.Response(
        200,
        json=tool_message({"triples": [{"subject": "Ana", "predicate": "uses", "object": "Vim"}]}),
    )
    assert not post_save.has_listeners(BoundaryCall)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = api.post("/api/v1/decompose", {"text": "Ana uses Vim."}, format="json")
    assert response.status_code == 200
    assert BoundaryCall.objects.count() == 1
    assert not ModelVersion.objects.exists()
    assert callbacks == []
    # The trigger's own queries: the watermark aggregate, and anything about runs.
    trigger_sql = [
        sql
        for sql in (q["sql"] for q in queries.captured_queries)
        if ("MAX(" in sql.upper() and "data_watermark" in sql) or "training_trainingrun" in sql
    ]
    assert trigger_sql == []
    assert reap_and_queue_trainings().startswith("queued v")  # the schedule does it instead
