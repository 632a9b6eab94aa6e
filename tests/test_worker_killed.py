"""A training worker killed in the middle of a training, for real: django-q2's cluster of the
training queue (`VALENCE_TRAINING_QUEUE`, what a GPU host runs) trains in a subprocess over a
scratch database, and its whole process group gets SIGKILL (what an OOM kill or a lost host
does). The run is failed by the reaper once its heartbeat is stale, the serving version is
untouched, and the next training runs to the end on a new training worker, not on the default
cluster running beside it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.scratch_pairs import STORE_PAIRS
from tests.tiny_models import build_tiny_causal_lm
from training.api_bench import ScratchServer

SETUP = (
    STORE_PAIRS
    + """
from boundary.models import ModelVersion
serving = ModelVersion.objects.create(
    direction="decomposition", kind="generative", backend="transformers", base_model="tiny",
    status="ready", is_active=True, threshold=0.5, artifact_path="/nowhere",
)
print(serving.pk)
"""
)

STATE = """
import json
from boundary.models import ModelVersion
print(json.dumps([
    {"id": v.pk, "status": v.status, "active": v.is_active,
     "run": getattr(getattr(v, "training_run", None), "status", None),
     "step": getattr(getattr(v, "training_run", None), "step", None),
     "error": getattr(getattr(v, "training_run", None), "error", "")}
    for v in ModelVersion.objects.order_by("pk")
]))
"""


RAN_ON = """
import json
from django_q.models import Task
print(json.dumps({t.name: t.cluster for t in Task.objects.all()}))
"""


def queue(steps: int) -> str:
    train = {"max_steps": steps, "epochs": 10_000, "batch_size": 2}
    return (
        "from training.trigger import queue_training\n"
        f"v = queue_training('decomposition', trigger='manual', config={{'train': {train!r}}})\n"
        "print(v.pk)"
    )


def state(server: ScratchServer) -> dict[int, dict]:
    rows = json.loads(server.manage("shell", "--command", STATE).strip().splitlines()[-1])
    return {row["id"]: row for row in rows}


def wait_for(server: ScratchServer, version: int, done, what: str) -> dict:
    deadline = time.monotonic() + 300  # a safety net against a hang, not a speed bound
    while time.monotonic() < deadline:
        row = state(server)[version]
        if done(row):
            return row
        time.sleep(1.0)
    log = (server.folder / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"v{version} never {what}: {state(server)[version]}\n{log}")


@pytest.fixture(scope="module")
def killed_then_retrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("killed")
    lm = build_tiny_causal_lm(folder / "lm")
    server = ScratchServer(
        workers=1,
        threads=1,
        encoder_threads=1,
        folder=folder / "service",
        environment={
            "VALENCE_MODEL_DIR": str(folder / "models"),
            "VALENCE_BASE_MODEL_DECOMPOSITION": str(lm),
            "VALENCE_GENERATIVE_BACKEND": "transformers",
            "VALENCE_Q_WORKERS": "1",
            "VALENCE_TRAINING_QUEUE": "training",
            "VALENCE_TRAIN_EVERY": "1000000",  # only the trainings this test queues
            "VALENCE_ENCODER_TRAIN_EVERY": "1000000",
        },
    )
    try:
        server.prepare([])
        serving = int(server.manage("shell", "--command", SETUP).strip().splitlines()[-1])
        doomed = int(server.manage("shell", "--command", queue(1_000_000)).strip().splitlines()[-1])
        trainer = server.start_worker("training")
        wait_for(server, doomed, lambda r: r["run"] == "running" and r["step"] >= 1, "trained")
        os.killpg(trainer.pid, signal.SIGKILL)  # the worker and every child, no cleanup
        trainer.wait()
        after_kill = state(server)
        # Half an hour passes without a heartbeat; the every-minute tick reaps.
        server.manage(
            "shell",
            "--command",
            "from datetime import timedelta\nfrom django.utils import timezone\n"
            "from training.models import TrainingRun\nfrom training.tasks import "
            "reap_and_queue_trainings\nTrainingRun.objects.filter(status='running').update("
            "heartbeat_at=timezone.now() - timedelta(minutes=31))\n"
            "print(reap_and_queue_trainings())",
        )
        after_reap = state(server)
        retry = int(server.manage("shell", "--command", queue(2)).strip().splitlines()[-1])
        server.start_worker()  # the default cluster: schedules and the live audit
        server.start_worker("training")
        retried = wait_for(server, retry, lambda r: r["run"] not in ("pending", "running"), "ended")
        final = state(server)
        ran_on = json.loads(server.manage("shell", "--command", RAN_ON).strip().splitlines()[-1])
    finally:
        server.close()
    return {
        "serving": serving,
        "doomed": doomed,
        "retry": retry,
        "after_kill": after_kill,
        "after_reap": after_reap,
        "retried": retried,
        "final": final,
        "ran_on": ran_on,
    }


def test_the_killed_run_stays_running_until_the_reaper_sees_its_stale_heartbeat(
    killed_then_retrained,
):
    run = killed_then_retrained
    assert run["after_kill"][run["doomed"]]["run"] == "running"
    reaped = run["after_reap"][run["doomed"]]
    assert (reaped["status"], reaped["run"]) == ("failed", "failed")
    assert "stopped reporting" in reaped["error"]


def test_the_serving_version_is_untouched(killed_then_retrained):
    run = killed_then_retrained
    assert run["after_reap"][run["serving"]]["active"] is True
    assert run["final"][run["serving"]]["active"] is True


def test_the_next_training_runs_to_the_end_on_a_new_worker(killed_then_retrained):
    run = killed_then_retrained
    assert (run["retried"]["run"], run["retried"]["status"]) == ("succeeded", "ready"), run[
        "retried"
    ]["error"]


def test_the_training_ran_on_the_training_queues_worker(killed_then_retrained):
    run = killed_then_retrained
    assert run["ran_on"][f"train v{run['retry']} decomposition generative"] == "training"


def test_no_training_process_survives_the_kill(killed_then_retrained):
    """The whole group went: nothing kept writing steps for the dead run."""
    run = killed_then_retrained
    assert run["final"][run["doomed"]]["step"] == run["after_reap"][run["doomed"]]["step"]
    assert Path("/proc").exists()
