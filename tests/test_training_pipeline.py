"""The self-training loop for real, on a tiny random model: train, export, evaluate, calibrate,
register, promote, serve. The model learns a handful of pairs by heart, which is enough to prove
every step runs end to end and that what is served is what was trained."""

from __future__ import annotations

import json

import httpx
import pytest
from django.core.management import call_command

from boundary import cascade
from boundary.models import ModelVersion
from tests.anthropic_mock import tool_message
from tests.factories import BoundaryCallFactory
from training.models import Evaluation, TrainingRun
from training.pipeline import queue_training, run_training

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("memorising_split")]

FIELDS = ("subject", "predicate", "object")
PAIRS = [
    ("Ana uses Vim.", [["Ana", "uses", "Vim"]]),
    ("Ravi leads Atlas.", [["Ravi", "leads", "Atlas"]]),
    ("Mei likes tea.", [["Mei", "likes", "tea"]]),
]


def as_dicts(triples):
    return [dict(zip(("subject", "predicate", "object"), t, strict=True)) for t in triples]


def store_pairs(direction: str = "decomposition") -> None:
    """The same pairs in both splits (a real split never does this; the hash is forced): the
    tiny model can only be right about what it memorised."""
    for text, triples in PAIRS:
        for split in ("train", "eval"):
            source, target = (text, as_dicts(triples))
            if direction == "recomposition":
                source, target = target, source
            BoundaryCallFactory(
                direction=direction,
                input=source,
                output=target,
                split=split,
                input_hash=f"{split}:{text}",
            )


def train(direction="decomposition", trigger="automatic", steps=200, **config):
    version = queue_training(
        direction,
        trigger=trigger,
        config={"train": {"epochs": steps, "max_steps": steps, "learning_rate": 1e-2, **config}},
        enqueue=False,
    )
    return run_training(version.pk)


def test_training_registers_an_evaluated_calibrated_version(tiny_setup):
    store_pairs()
    version = train()
    run = version.training_run
    assert (run.status, version.status) == ("succeeded", "ready"), run.error
    assert (run.step, run.total_steps) == (200, 200)
    assert (version.train_count, version.eval_count) == (3, 3)
    assert 0.0 <= version.threshold <= 1.0
    assert version.metrics["exact"]["f1"] == version.headline_metric
    evaluation = Evaluation.objects.get(version=version)
    assert evaluation.latency_p50_ms > 0


def test_the_trained_model_learns_its_pairs(tiny_setup):
    store_pairs()
    version = train()
    assert version.headline_metric > 0.9, version.training_run.log


def test_a_version_that_passes_the_gate_is_promoted_and_serves(tiny_setup):
    store_pairs()
    version = train()
    assert version.is_active
    call = cascade.decompose("Ravi leads Atlas.")
    assert (call.served_by, call.model_version) == ("student", version)
    assert call.output == [{"subject": "Ravi", "predicate": "leads", "object": "Atlas"}]


def test_an_unsure_student_falls_back_to_the_llm_and_both_answers_are_kept(tiny_setup, teacher_api):
    store_pairs()
    version = train()
    ModelVersion.objects.filter(pk=version.pk).update(threshold=1.0)
    llm_triples = [{"subject": "Ana", "predicate": "uses", "object": "Vim"}]
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": llm_triples}))
    call = cascade.decompose("Ana uses Vim.")
    assert (call.served_by, call.fallback_reason, call.output) == (
        "teacher",
        "low_confidence",
        llm_triples,
    )
    assert call.diagnostics["student_answer"]["version"] == version.pk
    assert call.diagnostics["student_answer"]["output"] == llm_triples


def test_without_the_llm_an_unsure_student_answers_degraded(tiny_setup):
    store_pairs()
    version = train()
    ModelVersion.objects.filter(pk=version.pk).update(threshold=1.0)
    call = cascade.decompose("Ana uses Vim.")
    assert (call.served_by, call.model_version, call.teacher_error) == (
        "degraded",
        version,
        "no_api_key",
    )


def test_a_manual_training_waits_for_staff_to_promote(tiny_setup):
    store_pairs()
    version = train(trigger="manual")
    assert (version.status, version.is_active) == ("ready", False)


def test_a_second_version_is_compared_with_the_active_one_on_the_same_data(tiny_setup):
    store_pairs()
    first = train()
    second = train(steps=5)
    assert second.metrics["baseline"]["version"] == first.pk
    assert second.metrics["baseline"]["data_fingerprint"] == second.metrics["data_fingerprint"]
    first.refresh_from_db()
    assert first.is_active  # the 5-step model is worse, so the gate keeps the first


def test_recomposition_trains_too(tiny_setup):
    store_pairs("recomposition")
    version = train(direction="recomposition")
    assert version.status == "ready", version.training_run.error
    assert version.metrics["chrf_pp"] > 90


def test_a_cancelled_run_is_recorded_as_cancelled(tiny_setup):
    store_pairs()
    version = queue_training("decomposition", trigger="manual", enqueue=False)
    TrainingRun.objects.filter(version=version).update(cancel_requested=True)
    version = run_training(version.pk)
    assert (version.status, version.training_run.status) == ("failed", "cancelled")


def test_a_failed_run_keeps_its_error(tiny_setup, tmp_path):
    tiny_setup.VALENCE_BASE_MODELS = {"decomposition": str(tmp_path / "no-such-model")}
    store_pairs()
    version = train()
    assert (version.status, version.training_run.status) == ("failed", "failed")
    assert version.training_run.error


def test_with_no_pairs_the_run_fails_clearly(tiny_setup):
    version = train()
    assert "no eligible decomposition training pairs" in version.training_run.error


def test_evaluate_boundary_scores_a_version_on_a_reference_file(tiny_setup, tmp_path, capsys):
    store_pairs()
    version = train()
    data = tmp_path / "refs.jsonl"
    records = [{"id": str(i), "text": t, "triples": tr} for i, (t, tr) in enumerate(PAIRS)]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    call_command("evaluate_boundary", "--version", str(version.pk), "--data", str(data))
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 3
    assert report["exact"]["f1"] > 0.9
    assert report["latency_p95_ms"] >= report["latency_p50_ms"] > 0
    assert Evaluation.objects.filter(version=version, data_source=str(data)).exists()


def test_an_active_version_that_cannot_load_does_not_fail_its_successor(tiny_setup):
    """Its traffic already goes to the LLM; the candidate is judged on its own merits."""
    from tests.factories import ModelVersionFactory

    lost = ModelVersionFactory(is_active=True, artifact_path="/nowhere")
    store_pairs()
    version = train()
    assert version.training_run.status == "succeeded", version.training_run.error
    assert version.metrics["baseline"]["version"] == lost.pk
    assert "no model folder" in version.metrics["baseline"]["error"]
    assert version.is_active
