from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from boundary.models import ModelVersion
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from training.models import TrainingRun
from training.pipeline import maybe_queue_training, queue_training
from training.tasks import reap_and_queue_trainings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch):
    """Record what would be handed to django-q2 instead of running it."""
    queued = []
    monkeypatch.setattr("training.trigger._enqueue", queued.append)
    return queued


def test_the_scheduled_task_queues_training_after_enough_new_pairs(
    settings, django_capture_on_commit_callbacks, _no_worker
):
    settings.VALENCE_TRAIN_EVERY = 3
    BoundaryCallFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        reap_and_queue_trainings()
    version = ModelVersion.objects.get()
    assert (version.direction, version.status) == ("decomposition", "queued")
    assert version.training_run.trigger == "automatic"
    assert [run.version_id for run in _no_worker] == [version.pk]


def test_it_waits_until_enough_pairs_exist(settings):
    settings.VALENCE_TRAIN_EVERY = 3
    BoundaryCallFactory.create_batch(2)
    assert reap_and_queue_trainings() == "nothing to reap or queue"
    assert not ModelVersion.objects.exists()


def test_it_never_queues_two_trainings_of_one_direction(settings):
    settings.VALENCE_TRAIN_EVERY = 1
    BoundaryCallFactory()
    first = maybe_queue_training("decomposition")
    BoundaryCallFactory(input="Ana uses Vim.")
    assert [v.kind for v in first] == ["generative"]
    assert maybe_queue_training("decomposition") == []
    assert queue_training("decomposition", trigger="manual") is None


def test_pairs_seen_by_an_earlier_training_do_not_count_again(settings):
    settings.VALENCE_TRAIN_EVERY = 2
    BoundaryCallFactory.create_batch(2)
    [version] = maybe_queue_training("decomposition")
    version.status = "ready"
    version.save()
    BoundaryCallFactory(input="Ana uses Vim.")
    assert maybe_queue_training("decomposition") == []


def test_a_run_whose_worker_died_stops_blocking_new_trainings(settings):
    settings.VALENCE_TRAIN_EVERY = 1
    dead = ModelVersionFactory(status="training")
    TrainingRun.objects.create(
        version=dead,
        trigger="automatic",
        status="running",
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )
    BoundaryCallFactory()
    summary = reap_and_queue_trainings()
    assert f"reaped v{dead.pk}" in summary
    assert "queued v" in summary
    dead.refresh_from_db()
    assert dead.status == "failed"
    assert "stopped reporting" in dead.training_run.error


def test_only_the_students_chosen_for_automatic_training_are_queued(settings):
    settings.VALENCE_TRAIN_EVERY = 1
    settings.VALENCE_ENCODER_TRAIN_EVERY = 1
    settings.VALENCE_AUTO_TRAIN = frozenset({"decomposition:encoder"})
    BoundaryCallFactory()
    assert [v.kind for v in maybe_queue_training("decomposition")] == ["encoder"]


def test_a_manual_training_is_not_limited_by_the_automatic_choice(settings):
    settings.VALENCE_AUTO_TRAIN = frozenset({"decomposition:encoder"})
    assert queue_training("decomposition", trigger="manual") is not None
