"""A candidate refused for want of calibration evidence is judged again on traffic it never saw."""

from __future__ import annotations

import pytest

from boundary.models import ModelVersion
from boundary.students import StudentAnswer
from boundary.triples import Triple
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from tests.test_training_pipeline import PAIRS, as_dicts, store_pairs, train
from training.models import Recalibration, TrainingRun
from training.recalibration import evidence_pairs, queue_due_recalibrations, run_recalibration
from training.tasks import reap_and_queue_trainings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch):
    """Record what would be handed to django-q2 instead of running it."""
    queued: list[Recalibration] = []
    monkeypatch.setattr("training.recalibration._enqueue", queued.append)
    monkeypatch.setattr("training.trigger._enqueue", lambda run: None)
    return queued


def fact(text: str, subject: str, split: str = "train"):
    return BoundaryCallFactory(
        input=text, output=[{"subject": subject, "predicate": "uses", "object": "Vim"}], split=split
    )


def refused_candidate(watermark: int, **metrics) -> ModelVersion:
    """A ready, uncalibrated version whose automatic training would have promoted it."""
    version = ModelVersionFactory(
        threshold=None,
        data_watermark=watermark,
        eval_count=2,
        metrics={"headline": 0.8, "calibration": {"calibrated": False, "chosen_on": 2}, **metrics},
    )
    TrainingRun.objects.create(version=version, trigger="automatic", status="succeeded")
    return version


@pytest.fixture
def quiet_trigger(settings):
    settings.VALENCE_TRAIN_EVERY = 10_000  # no training gets in the way
    settings.VALENCE_RECALIBRATE_EVERY = 3
    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.5}
    return settings


def test_evidence_is_its_eval_split_and_later_pairs_it_never_saw():
    trained = fact("Ana uses Vim.", "Ana")
    held_out = fact("Ravi uses Vim.", "Ravi", split="eval")
    version = refused_candidate(watermark=held_out.pk)
    new = fact("Mei uses Vim.", "Mei")
    fact("Ana uses Vim.", "Ana")  # its text and facts were trained on
    fact("Ana, as ever, uses Vim.", "Ana")  # a new wording of a fact it trained on
    assert trained.pk < held_out.pk
    assert sorted(p.call_id for p in evidence_pairs(version)) == [held_out.pk, new.pk]


def test_the_tick_queues_a_recalibration_once_enough_new_labels_arrive(
    quiet_trigger, django_capture_on_commit_callbacks, _no_worker
):
    version = refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    for name in ("Mei", "Ravi", "Noor", "Lea", "Ola"):  # judged on 2, every 3: 5 are due
        fact(f"{name} uses Vim.", name)
    with django_capture_on_commit_callbacks(execute=True):
        summary = reap_and_queue_trainings()
    assert summary == f"queued recalibration of v{version.pk} on 5"
    assert [r.version_id for r in _no_worker] == [version.pk]


def test_it_waits_for_enough_labels_beyond_what_it_was_judged_on(quiet_trigger):
    refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    for name in ("Mei", "Ravi", "Noor", "Lea"):
        fact(f"{name} uses Vim.", name)
    assert queue_due_recalibrations() == []  # 4 new < 2 judged on + 3


def looked_at(version: ModelVersion, through: int) -> None:
    """A finished look that read the labels up to call `through` and chose on 2 of them (its
    evaluation was capped, as a generative candidate's is)."""
    Recalibration.objects.create(
        version=version, evidence=2, status="done", through_call_id=through
    )


def test_after_a_capped_look_no_new_label_queues_nothing(quiet_trigger):
    version = refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    newest = [fact(f"{name} uses Vim.", name) for name in ("Mei", "Ravi", "Noor", "Lea", "Ola")]
    looked_at(version, through=newest[-1].pk)  # chosen_on is still 2: 5 >= 2 + 3 held before
    assert queue_due_recalibrations() == []


def test_after_a_look_every_new_labels_queue_the_next(quiet_trigger):
    version = refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    newest = [fact(f"{name} uses Vim.", name) for name in ("Mei", "Ravi", "Noor", "Lea", "Ola")]
    looked_at(version, through=newest[-1].pk)
    for name in ("Ines", "Jun", "Kofi"):
        fact(f"{name} uses Vim.", name)
    assert [r.evidence for r in queue_due_recalibrations()] == [8]


def test_a_candidate_refused_for_its_score_is_left_alone(quiet_trigger):
    refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk, headline=0.2)
    for name in ("Mei", "Ravi", "Noor", "Lea", "Ola"):
        fact(f"{name} uses Vim.", name)
    assert queue_due_recalibrations() == []


def test_a_manual_training_is_never_recalibrated_into_service(quiet_trigger):
    version = refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    TrainingRun.objects.filter(version=version).update(trigger="manual")
    for name in ("Mei", "Ravi", "Noor", "Lea", "Ola"):
        fact(f"{name} uses Vim.", name)
    assert queue_due_recalibrations() == []


def test_one_recalibration_at_a_time_per_version(quiet_trigger):
    refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    for name in ("Mei", "Ravi", "Noor", "Lea", "Ola"):
        fact(f"{name} uses Vim.", name)
    assert len(queue_due_recalibrations()) == 1
    assert queue_due_recalibrations() == []


def test_a_recalibration_the_worker_lost_is_failed_later(quiet_trigger):
    version = refused_candidate(watermark=fact("Ana uses Vim.", "Ana").pk)
    lost = Recalibration.objects.create(version=version, evidence=5)
    Recalibration.objects.filter(pk=lost.pk).update(created_at="2000-01-01T00:00Z")
    queue_due_recalibrations()
    lost.refresh_from_db()
    assert lost.status == "failed"


def test_the_models_api_says_when_a_version_is_being_recalibrated(api):
    version = refused_candidate(watermark=0)
    Recalibration.objects.create(version=version, evidence=5)
    body = api.get("/api/v1/models").json()
    assert [v["recalibrating"] for v in body["results"]] == [True]


@pytest.mark.usefixtures("memorising_split")
def test_more_evidence_calibrates_and_promotes_a_refused_student(tiny_setup):
    """Three eval pairs cannot show 70 % agreement at z = 1.645 (3 of 3: lower bound 0.53);
    twenty-four can, also on each cross-fitted half (7 of 7 reach 0.72). The tiny model is
    right on what it memorised, so new eval-split calls of those texts are evidence it never
    trained on (a real split keeps them apart by text)."""
    tiny_setup.VALENCE_CALIBRATION_TARGET = 0.7
    tiny_setup.VALENCE_CALIBRATION_Z = 1.645
    tiny_setup.VALENCE_RECALIBRATE_EVERY = 21
    store_pairs()
    version = train()
    assert (version.status, version.is_calibrated, version.is_active) == ("ready", False, False)
    for round_ in range(7):
        for text, triples in PAIRS:
            BoundaryCallFactory(
                input=text, output=as_dicts(triples), split="eval", input_hash=f"{round_}{text}"
            )
    [recalibration] = queue_due_recalibrations()
    assert recalibration.evidence == 24
    recalibration = run_recalibration(recalibration.pk)
    version.refresh_from_db()
    assert (recalibration.status, recalibration.calibrated, recalibration.promoted) == (
        "done",
        True,
        True,
    ), recalibration.outcome
    assert version.is_active and version.calibration["chosen_on"] == 24
    assert version.evaluations.filter(data_source__startswith="recalibration").exists()


def test_a_threshold_chosen_at_one_look_is_measured_on_the_labels_of_the_next(
    scripted_loader, settings
):
    """Held out by time: 12 labels cannot show 95 % (that needs ~52 right in a row), but the
    previous look's threshold answered all 12 labels that arrived after it, every one right, so
    the version serves with that threshold and that measurement as its promise."""
    from boundary.triples import Triple
    from tests.scripted_student import ScriptedStudent

    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.5}
    chosen_through = fact("Ana uses Vim.", "Ana").pk
    version = refused_candidate(watermark=chosen_through)
    ModelVersion.objects.filter(pk=version.pk).update(backend="scripted")
    scripted_loader.students[version.pk] = ScriptedStudent(
        triples=[Triple("Chris", "prefers", "composable architectures")], confidence=0.9
    )
    Recalibration.objects.create(
        version=version, evidence=5, status="done", threshold=0.5, through_call_id=chosen_through
    )
    for n in range(12):  # the factory's answer: what the scripted student says
        BoundaryCallFactory(input=f"Person {n} prefers composable architectures.")
    now = Recalibration.objects.create(version=version, evidence=12)
    now = run_recalibration(now.pk)
    version.refresh_from_db()
    assert (now.status, now.promoted) == ("done", True), now.outcome
    assert "answered 12 of 12 labels since" in now.outcome
    assert (version.threshold, version.calibration["held_out"]["answered"]) == (0.5, 12)
    assert version.is_active


class SureOnSomeTexts:
    """Right and sure on texts that say "surely"; elsewhere unsure, with a sure-looking wrong
    triple beside the right one."""

    right = Triple("Chris", "prefers", "composable architectures")

    def decompose(self, text: str) -> StudentAnswer:
        if "surely" in text:
            return StudentAnswer([self.right], 0.9, triple_confidences=(0.9,), complete=0.9)
        wrong = Triple("Chris", "prefers", "monoliths")
        return StudentAnswer([self.right, wrong], 0.1, triple_confidences=(0.9, 0.8), complete=0.1)


def test_held_out_by_time_keeps_no_triple_of_unsure_answers_when_completing_spoils_them(
    scripted_loader, settings
):
    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.5}
    chosen_through = fact("Ana uses Vim.", "Ana").pk
    version = refused_candidate(watermark=chosen_through)
    ModelVersion.objects.filter(pk=version.pk).update(backend="scripted")
    scripted_loader.students[version.pk] = SureOnSomeTexts()
    Recalibration.objects.create(
        version=version, evidence=5, status="done", threshold=0.5, through_call_id=chosen_through
    )
    for n in range(12):  # the factory's answer is the right triple
        BoundaryCallFactory(input=f"Person {n} surely prefers composable architectures.")
        BoundaryCallFactory(input=f"Person {n} may prefer composable architectures.")
    now = run_recalibration(Recalibration.objects.create(version=version, evidence=24).pk)
    version.refresh_from_db()
    assert (now.status, now.promoted) == ("done", True), now.outcome
    assert "keeps no triple of an unsure answer" in now.outcome
    assert (version.threshold, version.calibration["per_triple"]) == (0.5, False)
