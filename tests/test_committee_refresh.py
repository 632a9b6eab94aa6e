"""When another encoder serves, the generative decomposer's committee is measured again with it,
on the eval split, instead of staying silent until its own next training."""

from __future__ import annotations

import pytest

from boundary import cascade
from boundary.triples import Triple
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from tests.scripted_student import ScriptedStudent
from training import committee_refresh
from training.committee_refresh import measure_committee, queue_committee_measurement
from training.tasks import reap_and_queue_trainings

pytestmark = pytest.mark.django_db

PEOPLE = ("Ana", "Ravi", "Mei", "Noor", "Lea", "Ola")


def uses(person: str) -> Triple:
    return Triple(person, "uses", "Vim")


@pytest.fixture(autouse=True)
def _queue(monkeypatch, settings):
    """Record what would be handed to django-q2, with a cache of this test's own."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.VALENCE_TRAIN_EVERY = 10_000  # no training gets in the way
    settings.VALENCE_COMMITTEE_MIN_AGREED = 5
    from django.core.cache import cache

    cache.clear()
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(committee_refresh, "_enqueue", lambda *pair: queued.append(pair))
    monkeypatch.setattr("training.trigger._enqueue", lambda run: None)
    return queued


def active_pair(loader, *, measured_with: int | None, encoder_right: bool = True):
    """An active encoder and an active generative decomposer whose committee names
    `measured_with` (None: never measured); both answer "<person> uses Vim"."""
    encoder = ModelVersionFactory(kind="encoder", backend="scripted", is_active=True, threshold=0.9)
    loader.students[encoder.pk] = EchoStudent(confidence=0.4, right=encoder_right)
    committee = {} if measured_with is None else {"committee": {"partner": measured_with}}
    generative = ModelVersionFactory(
        kind="generative", backend="scripted", is_active=True, threshold=0.8, metrics=committee
    )
    loader.students[generative.pk] = EchoStudent(confidence=0.3, right=encoder_right)
    return generative, encoder


class EchoStudent(ScriptedStudent):
    """Answers "<first word> uses Vim" (or Emacs, when it is to be wrong)."""

    def __init__(self, *, confidence: float, right: bool) -> None:
        super().__init__(confidence=confidence)
        self.tool = "Vim" if right else "Emacs"

    def decompose(self, text: str):
        self.triples = [Triple(text.split()[0], "uses", self.tool)]
        return super().decompose(text)


def eval_split_labels() -> None:
    for person in PEOPLE:
        BoundaryCallFactory(
            input=f"{person} uses Vim.", output=[uses(person).as_dict()], split="eval"
        )


def test_the_tick_queues_a_measurement_for_a_pair_never_measured_together(
    scripted_loader, _queue, django_capture_on_commit_callbacks
):
    old_encoder = ModelVersionFactory(kind="encoder", status="retired")
    generative, encoder = active_pair(scripted_loader, measured_with=old_encoder.pk)
    with django_capture_on_commit_callbacks(execute=True):
        summary = reap_and_queue_trainings()
    assert _queue == [(generative.pk, encoder.pk)]
    assert f"queued the committee of v{generative.pk} with v{encoder.pk}" in summary


def test_a_queued_measurement_is_not_queued_again_by_the_next_tick(
    scripted_loader, _queue, django_capture_on_commit_callbacks
):
    active_pair(scripted_loader, measured_with=None)
    with django_capture_on_commit_callbacks(execute=True):
        queue_committee_measurement()
        queue_committee_measurement()
    assert len(_queue) == 1


def test_a_pair_measured_together_is_not_queued(scripted_loader, _queue):
    encoder = ModelVersionFactory(kind="encoder", backend="scripted", is_active=True)
    ModelVersionFactory(
        kind="generative", is_active=True, metrics={"committee": {"partner": encoder.pk}}
    )
    assert queue_committee_measurement() is None


def test_the_measurement_names_the_new_encoder_and_leaves_the_threshold(scripted_loader):
    old_encoder = ModelVersionFactory(kind="encoder", status="retired")
    generative, encoder = active_pair(scripted_loader, measured_with=old_encoder.pk)
    eval_split_labels()
    measure_committee(generative.pk, encoder.pk)
    generative.refresh_from_db()
    stored = generative.committee
    assert (stored["partner"], stored["agreed"], stored["right"]) == (encoder.pk, 6, 6)
    assert generative.threshold == 0.8


def test_once_measured_again_the_pair_answers_where_it_agrees(scripted_loader, teacher_api):
    generative, encoder = active_pair(scripted_loader, measured_with=None)
    eval_split_labels()
    assert cascade.decompose("Ana uses Vim.").served_by != "student"  # no committee yet
    measure_committee(generative.pk, encoder.pk)
    call = cascade.decompose("Ines uses Vim.")  # not among the labels: nothing remembered
    assert (call.served_by, call.triple_sources[0]["stage"]) == ("student", "committee")


def test_a_pair_that_agrees_on_wrong_answers_is_measured_but_does_not_answer(scripted_loader):
    generative, encoder = active_pair(scripted_loader, measured_with=None, encoder_right=False)
    eval_split_labels()
    promise = measure_committee(generative.pk, encoder.pk)
    generative.refresh_from_db()
    assert (promise["agreed"], promise["right"]) == (6, 0)
    assert generative.committee_partner is None


def test_a_measurement_for_a_pair_that_no_longer_serves_does_nothing(scripted_loader):
    generative, encoder = active_pair(scripted_loader, measured_with=None)
    eval_split_labels()
    encoder.is_active = False
    encoder.status = "retired"
    encoder.save()
    assert measure_committee(generative.pk, encoder.pk) is None
    generative.refresh_from_db()
    assert generative.committee == {}
