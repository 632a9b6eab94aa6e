"""The MLX backend on a tiny random Llama: parity with transformers, LoRA training, dispatch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from boundary.generation import GenerativeStudent, TransformersGenerator
from boundary.loaders import load_runtime as load_generative_student
from boundary.prompts import decomposition_prompt, decomposition_target, recomposition_prompt
from boundary.students import StudentSpec
from boundary.triples import Triple
from tests.tiny_models import build_tiny_causal_lm
from training.trainers.generative import Cancelled, TrainConfig

pytest.importorskip("mlx_lm")

from boundary.mlx_backend import MLXGenerator  # noqa: E402
from training.trainers.mlx import train_lora_mlx  # noqa: E402

PROMPTS = [
    decomposition_prompt("Alan Bean was born in Wheeler, Texas."),
    recomposition_prompt([Triple("Aarhus", "leader", "Jacob Bundsgaard")]),
]
PAIRS = [
    (decomposition_prompt(text), decomposition_target([triple]))
    for text, triple in [
        ("Ana uses Vim.", Triple("Ana", "uses", "Vim")),
        ("Bob likes tea.", Triple("Bob", "likes", "tea")),
        ("Cleo owns a cat.", Triple("Cleo", "owns", "cat")),
    ]
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny model with SmolLM2's rope_theta, written the transformers-5 way (nested under
    rope_parameters), which mlx_lm's Llama does not read by itself."""
    path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "merged")
    config_file = path / "config.json"
    config = json.loads(config_file.read_text())
    config["rope_parameters"]["rope_theta"] = 100000.0
    config_file.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def trained(tiny_dir, tmp_path_factory):
    progress = []
    config = TrainConfig(epochs=200, batch_size=3, learning_rate=1e-2, seed=0)
    out_dir = tmp_path_factory.mktemp("trained")
    result = train_lora_mlx(tiny_dir, PAIRS, out_dir, config, on_progress=progress.append)
    return result, progress


def test_greedy_decoding_matches_transformers(tiny_dir):
    mlx, reference = MLXGenerator(tiny_dir), TransformersGenerator(tiny_dir)
    for prompt in PROMPTS:
        got, expected = mlx.generate(prompt, 24), reference.generate(prompt, 24)
        assert (got.text, got.complete) == (expected.text, expected.complete)
        assert len(got.token_logprobs) == len(expected.token_logprobs) > 0
        for a, b in zip(got.token_logprobs, expected.token_logprobs, strict=True):
            assert math.isclose(a, b, abs_tol=1e-4)


def test_it_stops_at_max_new_tokens(tiny_dir):
    generation = MLXGenerator(tiny_dir).generate(PROMPTS[0], 3)
    assert len(generation.token_logprobs) <= 3
    assert generation.complete == (len(generation.token_logprobs) < 3)


def test_training_memorises_the_pairs(trained):
    result, progress = trained
    assert result.steps == 200 and result.examples == 3 and result.skipped_too_long == 0
    assert result.device.startswith("mlx-")
    assert [p.step for p in progress] == list(range(1, 201))
    assert result.final_loss < 0.05
    generator = MLXGenerator(result.merged_dir)
    for prompt, target in PAIRS:
        generation = generator.generate(prompt, 16)
        assert (generation.text, generation.complete) == (target, True)


def test_the_trained_folder_serves_through_transformers(trained):
    generator = TransformersGenerator(trained[0].merged_dir)
    for prompt, target in PAIRS:
        assert generator.generate(prompt, 16).text == target


def test_cancelling_saves_nothing(tiny_dir, tmp_path):
    with pytest.raises(Cancelled):
        train_lora_mlx(tiny_dir, PAIRS, tmp_path, TrainConfig(), should_stop=lambda: True)
    assert not (tmp_path / "merged").exists()


def test_load_generative_student_dispatches_mlx(tiny_dir):
    spec = StudentSpec(
        version_id=1,
        direction="decomposition",
        kind="generative",
        backend="mlx",
        base_model="tiny",
        artifact_path=str(tiny_dir.parent),
    )
    student = load_generative_student(spec)
    assert isinstance(student, GenerativeStudent)
    assert isinstance(student.generator, MLXGenerator)
