"""The training loop's commands, as an operator runs them."""

from __future__ import annotations

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import OrmQ

from boundary.models import BoundaryCall, ModelVersion, VersionEvent
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def write_pairs(path, count=3):
    records = [
        {"text": f"Person {i} uses Vim.", "triples": [[f"Person {i}", "uses", "Vim"]]}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_calls_reports_what_it_stored(tmp_path):
    output = run("import_calls", str(write_pairs(tmp_path / "p.jsonl")))
    assert "imported 3 decomposition pairs" in output
    assert BoundaryCall.objects.filter(served_by="imported").count() == 6


def test_import_calls_refuses_a_bad_file_and_stores_nothing(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "ok", "triples": [["a", "b", "c"]]}\nnot json\n')
    with pytest.raises(CommandError, match=r"p.jsonl:2: invalid JSON.*nothing was imported"):
        run("import_calls", str(path))
    assert not BoundaryCall.objects.exists()


def test_export_calls_writes_jsonl(tmp_path):
    BoundaryCallFactory()
    run("export_calls", str(tmp_path / "out.jsonl"))
    record = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert {"text", "triples", "split", "tier"} <= set(record)


def test_train_boundary_queues_a_task_for_the_worker(
    tiny_setup, django_capture_on_commit_callbacks
):
    BoundaryCallFactory()
    with django_capture_on_commit_callbacks(execute=True):
        output = run("train_boundary", "--direction", "decomposition")
    version = ModelVersion.objects.get()
    assert f"queued v{version.pk}" in output
    assert version.status == "queued"
    task = OrmQ.objects.get()
    assert task.func() == "training.tasks.train_version"
    assert task.task["args"] == (version.pk,)


def test_train_boundary_refuses_a_second_training_in_flight(tiny_setup):
    ModelVersionFactory(status="training")
    with pytest.raises(CommandError, match="already queued or running"):
        run("train_boundary", "--direction", "decomposition")


def test_train_boundary_sync_trains_here_and_waits_for_staff(tiny_setup, memorising_split):
    BoundaryCallFactory(split="train")
    BoundaryCallFactory(split="eval")
    output = run("train_boundary", "--direction", "decomposition", "--sync", "--epochs", "3")
    version = ModelVersion.objects.get()
    assert (version.status, version.is_active) == ("ready", False)
    assert "trained 3 steps" in output


def test_promote_and_rollback_commands_are_audited():
    version = ModelVersionFactory(metrics={"headline": 0.8})
    assert f"v{version.pk} is active" in run("promote_version", str(version.pk))
    output = run("rollback_version", "--direction", "decomposition", "--reason", "drift")
    assert "no local model serves now" in output
    assert list(VersionEvent.objects.values_list("action", flat=True)) == ["rollback", "promote"]


def test_promote_version_explains_a_refusal(settings):
    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.9}
    version = ModelVersionFactory(metrics={"headline": 0.5})
    with pytest.raises(CommandError, match="below the floor"):
        run("promote_version", str(version.pk))


def test_cancel_training_flags_the_run():
    version = ModelVersionFactory(status="training")
    run_row = TrainingRun.objects.create(version=version, trigger="manual", status="running")
    run("cancel_training", str(version.pk))
    run_row.refresh_from_db()
    assert run_row.cancel_requested


def test_cancel_training_without_a_run_is_an_error():
    with pytest.raises(CommandError):
        run("cancel_training", "999")


GENERATIVE_BOOTSTRAP = ("--decomposer", "generative", "--steps", "1", "--eval-pairs", "3")


def test_bootstrap_does_nothing_when_an_api_key_is_set(settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-key"
    assert "starting cold" in run("bootstrap")
    assert not BoundaryCall.objects.exists()


def test_bootstrap_trains_both_directions_from_the_shipped_corpus(tiny_setup, monkeypatch):
    monkeypatch.setattr(
        "training.management.commands.bootstrap.fetch_base_model", lambda name, model_dir: None
    )
    output = run("bootstrap", *GENERATIVE_BOOTSTRAP)
    assert BoundaryCall.objects.filter(served_by="imported").count() >= 2_400
    # A quarter held out to evaluate and calibrate (VALENCE_BOOTSTRAP_EVAL_FRACTION).
    assert 0.2 < BoundaryCall.objects.filter(split="eval").count() / 3_200 < 0.3
    trained = ModelVersion.objects.filter(status="ready")
    assert set(trained.values_list("direction", flat=True)) == {"decomposition", "recomposition"}
    assert output.count("strict_f1") + output.count("chrf_pp") == 2


def test_offline_bootstrap_lets_an_uncalibrated_model_answer_only_degraded(tiny_setup, monkeypatch):
    # A second of training leaves the tiny random model wrong everywhere: uncalibrated.
    monkeypatch.setattr(
        "training.management.commands.bootstrap.fetch_base_model", lambda name, model_dir: None
    )
    output = run("bootstrap", *GENERATIVE_BOOTSTRAP)
    assert output.count("active for degraded answers only") == 2
    forced = VersionEvent.objects.filter(action="force_promote")
    assert forced.count() == 2
    assert all("degraded answers only" in event.reason for event in forced)
    active = ModelVersion.objects.filter(is_active=True)
    assert active.count() == 2 and not any(version.is_calibrated for version in active)


def test_a_refused_automatic_promotion_is_not_logged_as_passing(tiny_setup, monkeypatch):
    monkeypatch.setattr(
        "training.management.commands.bootstrap.fetch_base_model", lambda name, model_dir: None
    )
    run("bootstrap", *GENERATIVE_BOOTSTRAP)
    refusals = VersionEvent.objects.filter(action="refused")
    assert refusals.count() == 2
    assert all("gate passed" not in event.reason for event in refusals)
    assert all("uncalibrated" in event.verdict["reasons"][0] for event in refusals)


def test_bootstrap_trains_a_fixed_number_of_steps_whatever_the_load(tiny_setup, monkeypatch):
    monkeypatch.setattr(
        "training.management.commands.bootstrap.fetch_base_model", lambda name, model_dir: None
    )
    run("bootstrap", "--decomposer", "generative", "--steps", "3", "--eval-pairs", "3")
    runs = TrainingRun.objects.all()
    assert {run_row.config["train"]["max_steps"] for run_row in runs} == {3}
    assert all(run_row.config["train"]["max_seconds"] == 0 for run_row in runs)
    assert {(run_row.step, run_row.total_steps) for run_row in runs} == {(3, 3)}


def test_bootstrap_learns_decomposition_with_the_encoder_by_default(
    tiny_setup, tmp_path, monkeypatch
):
    from tests.tiny_models import build_tiny_encoder

    tiny_setup.VALENCE_ENCODER_BASE_MODEL = str(build_tiny_encoder(tmp_path / "encoder"))
    monkeypatch.setattr(
        "training.management.commands.bootstrap.fetch_base_model", lambda name, model_dir: None
    )
    run("bootstrap", "--steps", "1", "--encoder-steps", "2", "--eval-pairs", "3")
    kinds = dict(ModelVersion.objects.values_list("direction", "kind"))
    assert kinds == {"decomposition": "encoder", "recomposition": "generative"}


def test_a_threshold_without_held_out_evidence_never_answers_alone_offline(tiny_setup):
    """The gate refused it for calibration alone; offline it is forced in, degraded only."""
    from training.management.commands.bootstrap import Command

    no_evidence = {"count": 40, "answered": 0, "agreement": None, "agreement_interval": None}
    version = ModelVersionFactory(
        status="ready",
        threshold=0.9,
        metrics={
            "headline": 0.8,
            "calibration": {
                "calibrated": True,
                "threshold": 0.9,
                "target": 0.95,
                "choice": {"count": 40, "answered": 12},
                "held_out": no_evidence,
            },
        },
    )
    TrainingRun.objects.create(version=version, trigger="bootstrap", status="succeeded")
    version = Command()._degraded_only_if_refused_for_calibration(version)
    assert version.is_active and not version.is_calibrated


def test_bootstrap_leaves_active_directions_alone(tiny_setup):
    ModelVersionFactory(is_active=True)
    ModelVersionFactory(is_active=True, direction="recomposition")
    assert "active for both directions" in run("bootstrap")


def test_bench_boundary_compares_the_reference_and_the_fast_backend(
    tiny_setup, tiny_base, tmp_path
):
    from training.exporters import export_ort_genai

    artifact = tmp_path / "v-bench"
    artifact.mkdir()
    (artifact / "merged").symlink_to(tiny_base, target_is_directory=True)
    export_ort_genai(tiny_base, artifact / "ort-genai", precision="fp32")
    version = ModelVersionFactory(artifact_path=str(artifact), backend="onnx")
    report = json.loads(
        run("bench_boundary", "--version", str(version.pk), "--runs", "2", "--json")
    )
    names = [row["backend"] for row in report["results"]]
    assert names == ["transformers (reference)", "onnxruntime-genai (fast)"]
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 for row in report["results"])


def test_bench_boundary_without_a_trained_model_says_what_to_do():
    with pytest.raises(CommandError, match="no trained generative model"):
        run("bench_boundary")


def test_train_boundary_promote_promotes_when_the_gate_passes(tiny_setup, memorising_split):
    tiny_setup.VALENCE_TRAIN_LEARNING_RATE = 1e-2  # enough to memorise the one pair
    # The same pair in both splits (the memorising split's premise), whatever the factory's
    # sequence number: "Person 99" and "Person 100" tokenise differently.
    text = "Chris prefers composable architectures."
    for split in ("train", "eval"):
        digest = hashlib.sha256(f"{split}:{text}".encode()).hexdigest()
        BoundaryCallFactory(split=split, input=text, input_hash=digest)
    run("train_boundary", "--direction", "decomposition", "--sync", "--epochs", "60", "--promote")
    version = ModelVersion.objects.get()
    assert version.is_active
    assert version.training_run.trigger == "manual"
