"""`valence study-students`: the open questions answered with the product's own trainers and
evaluation, on held-out records (run for real on tiny random models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import load_file

from tests.tiny_models import build_tiny_causal_lm, build_tiny_encoder
from training.study import load_data
from training.trainers.generative import TrainConfig, train_lora

PEOPLE = ("Ana", "Ravi", "Mei", "Noor", "Lea", "Ola")
TOOLS = ("Vim", "Emacs", "Rust", "Go")


def record(person: str, tool: str) -> dict:
    return {
        "category": "Tools",
        "text": f"{person} uses {tool}.",
        "triples": [[person, "uses", tool]],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    train = [record(p, t) for p in PEOPLE[:4] for t in TOOLS]
    held_out = [record(p, t) for p in PEOPLE[4:] for t in TOOLS] + [record("Ana", "Vim")]
    return write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(
        tmp_path / "dev.jsonl", held_out
    )


def test_evaluation_records_that_share_a_text_or_triple_set_with_training_are_dropped(files):
    train, dev = files
    data = load_data(train, dev, category=None, seed=0, evaluation_limit=None)
    assert (len(data.train), len(data.evaluation), data.dropped) == (16, 8, 1)
    assert "Ana uses Vim." not in {r.text for r in data.evaluation}


def test_the_curve_trains_one_encoder_per_size_and_scores_each_held_out(
    files, tmp_path, settings, monkeypatch
):
    words = [*PEOPLE, *TOOLS, "uses"]
    settings.VALENCE_ENCODER_BASE_MODEL = str(build_tiny_encoder(tmp_path / "encoder", words))
    from training import study

    scored = []
    real_load = study.load_student

    def load(spec):
        scored.append(real_load(spec))
        return scored[-1]

    monkeypatch.setattr(study, "load_student", load)
    train, dev = files
    call_command(
        "study_students", "curve", train=train, evaluate=dev, sizes="4,100", out=tmp_path / "out"
    )
    assert len({id(student) for student in scored}) == 2  # each size scores its own model
    report = json.loads((tmp_path / "out" / "curve.json").read_text())
    assert report["configuration"]["evaluation_dropped_shared_with_train"] == 1
    assert [(row["records"], row["evaluated"]) for row in report["rows"]] == [(4, 8), (16, 8)]
    assert all(0.0 <= row["headline"] <= 1.0 for row in report["rows"])


def test_one_model_for_both_directions_is_scored_in_each(files, tmp_path, settings):
    lm = str(build_tiny_causal_lm(tmp_path / "lm"))
    settings.VALENCE_BASE_MODELS = {"decomposition": lm, "recomposition": lm}
    train, dev = files
    call_command("study_students", "joint", train=train, evaluate=dev, steps=2, out=tmp_path / "o")
    rows = json.loads((tmp_path / "o" / "joint.json").read_text())["rows"]
    assert [(r["arm"], r["direction"], r["steps"]) for r in rows] == [
        ("per direction", "decomposition", 2),
        ("per direction", "recomposition", 2),
        ("one for both", "decomposition", 4),
        ("one for both", "recomposition", 4),
    ]
    assert rows[1]["headline_metric"] == "chrf_pp / 100"


def test_comparing_base_models_needs_two(files, tmp_path):
    train, dev = files
    with pytest.raises(CommandError, match="at least two"):
        call_command("study_students", "base", train=train, evaluate=dev, bases="one")


def first_layer_norm(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    return next(v for k, v in sorted(weights.items()) if k.endswith("input_layernorm.weight"))


def test_full_fine_tuning_trains_weights_lora_leaves_alone(tmp_path):
    """LoRA adapts the projections only: the merged model's layer norms are the base's."""
    base = build_tiny_causal_lm(tmp_path / "lm")
    examples = [("Ana uses Vim. ->", " (Ana | uses | Vim)")] * 4
    norms = {}
    for method in ("lora", "full"):
        config = TrainConfig(method=method, max_steps=3, batch_size=2, learning_rate=1e-2)
        result = train_lora(base, examples, tmp_path / method, config)
        weights = load_file(result.merged_dir / "model.safetensors")
        norms[method] = next(v for k, v in weights.items() if k.endswith("input_layernorm.weight"))
    original = next(
        v
        for k, v in load_file(base / "model.safetensors").items()
        if k.endswith("input_layernorm.weight")
    )
    assert torch.equal(norms["lora"], original)
    assert not torch.equal(norms["full"], original)


def test_an_unknown_fine_tuning_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lora or full"):
        train_lora(tmp_path, [("a", "b")], tmp_path / "out", TrainConfig(method="prefix"))


def test_held_out_texts_are_split_by_whether_their_entities_were_seen_in_training():
    from boundary.triples import Triple
    from training.evaluation import Prediction
    from training.study import Record, entity_subsets

    trained = [Record("Ana uses Vim.", (Triple("Ana", "uses", "Vim"),))]
    evaluated = [
        Record("Ana uses vim.", (Triple("ana", "uses", "VIM"),)),  # seen, after normalising
        Record("Lea uses Go.", (Triple("Lea", "uses", "Go"),)),  # unseen
        Record("Ana uses Go.", (Triple("Ana", "uses", "Go"),)),  # mixed: one unseen
    ]
    predictions = [
        Prediction(output=[Triple("Ana", "uses", "Vim")]),
        Prediction(output=[Triple("Bo", "likes", "Rust")]),
        Prediction(output=[]),
    ]
    subsets = entity_subsets(trained, evaluated, predictions)
    assert subsets["seen_entities"] == {"count": 1, "strict_f1": 1.0}
    assert subsets["unseen_entities"] == {"count": 1, "strict_f1": 0.0}
    assert subsets["some_unseen"] == {"count": 2, "strict_f1": 0.0}


def test_an_encoder_curve_trains_for_the_epochs_asked(files, tmp_path, settings):
    words = [*PEOPLE, *TOOLS, "uses"]
    settings.VALENCE_ENCODER_BASE_MODEL = str(build_tiny_encoder(tmp_path / "encoder", words))
    train, dev = files
    call_command(
        "study_students", "curve", train=train, evaluate=dev, sizes="16", epochs=2, out=tmp_path
    )
    report = json.loads((tmp_path / "curve.json").read_text())
    assert report["configuration"]["arms"][0]["config"] == {"epochs": 2}
    assert report["rows"][0]["steps"] == 2  # 16 records, batches of 32: one step an epoch


def test_an_encoder_needs_at_least_one_epoch(files, tmp_path):
    train, dev = files
    with pytest.raises(CommandError, match="--epochs"):
        call_command("study_students", "curve", train=train, evaluate=dev, epochs=0)
