"""Generative students on a tiny random Llama: both runtimes, the exporter, and the student."""

from __future__ import annotations

import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from boundary.generation import (
    Generation,
    GenerativeStudent,
    IncompleteGeneration,
    OrtGenAIGenerator,
    TransformersGenerator,
    confidence_from_logprobs,
)
from boundary.loaders import load_runtime as load_generative_student
from boundary.prompts import decomposition_prompt, recomposition_prompt
from boundary.students import BackendUnavailable, StudentSpec
from boundary.triples import LinearFormatError, Triple
from tests.tiny_models import build_tiny_causal_lm
from training.exporters import ExportFailed, export_ort_genai

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PROMPTS = [
    decomposition_prompt("Alan Bean was born in Wheeler, Texas."),
    recomposition_prompt([Triple("Aarhus", "leader", "Jacob Bundsgaard")]),
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "merged")


@pytest.fixture(scope="module")
def reference(tiny_dir) -> TransformersGenerator:
    return TransformersGenerator(tiny_dir)


@pytest.fixture(scope="module")
def ort_dirs(tiny_dir) -> dict[str, Path]:
    """Both exports at once: each is mostly a child process importing torch."""
    pytest.importorskip("onnxruntime_genai")
    pytest.importorskip("onnx_ir", reason="the onnxruntime-genai model builder needs onnx-ir")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            precision: pool.submit(
                export_ort_genai,
                tiny_dir,
                tiny_dir.parent / f"ort-{precision}",
                precision=precision,
            )
            for precision in ("fp32", "int4")
        }
        return {precision: future.result() for precision, future in futures.items()}


@pytest.fixture(scope="module")
def ort_fp32_dir(ort_dirs) -> Path:
    return ort_dirs["fp32"]


@pytest.fixture(scope="module")
def ort_fp32(ort_fp32_dir) -> OrtGenAIGenerator:
    return OrtGenAIGenerator(ort_fp32_dir)


def _hf_greedy(tiny_dir: Path, prompt: str, max_new_tokens: int) -> tuple[list[int], list[float]]:
    """transformers' own greedy `generate`, as an independent check of the hand-written loop."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    tokens = out.sequences[0, ids.shape[1] :].tolist()
    logprobs = [
        float(torch.log_softmax(step[0].double(), -1)[token])
        for step, token in zip(out.logits, tokens, strict=True)
    ]
    return tokens, logprobs


def test_reference_matches_transformers_greedy_generate(tiny_dir, reference):
    tokens, logprobs = _hf_greedy(tiny_dir, PROMPTS[0], 12)
    if reference.eos_token_ids & set(tokens):
        pytest.skip("the random model wrote EOS; min_new_tokens made generate go on")

    generation = reference.generate(PROMPTS[0], 12)

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    assert generation.text == tokenizer.decode(tokens)
    assert generation.token_logprobs == pytest.approx(logprobs, abs=1e-5)
    assert not generation.complete


def test_reference_stops_at_max_new_tokens_with_one_logprob_per_token(reference):
    generation = reference.generate(PROMPTS[1], 7)

    assert len(generation.token_logprobs) == 7
    assert not generation.complete
    assert all(lp <= 0.0 for lp in generation.token_logprobs)
    assert 0.0 <= confidence_from_logprobs(generation.token_logprobs) <= 1.0


def test_reference_stops_at_eos_and_leaves_it_out(tiny_dir, reference):
    tokens, _ = _hf_greedy(tiny_dir, PROMPTS[0], 10)
    stop = tokens[4]  # pretend the 5th token is EOS; generation ends at its first occurrence
    expected = tokens[: tokens.index(stop)]
    generator = TransformersGenerator(tiny_dir)
    generator.eos_token_ids = frozenset({stop})

    generation = generator.generate(PROMPTS[0], 10)

    assert generation.complete
    assert len(generation.token_logprobs) == len(expected)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dir)
    assert generation.text == tokenizer.decode(expected)


def test_reference_uses_the_tokenizers_eos(reference):
    assert reference.eos_token_ids == {2}  # <|im_end|>, as in SmolLM2


@pytest.mark.parametrize("prompt", PROMPTS)
def test_ort_fp32_export_generates_what_transformers_does(reference, ort_fp32, prompt):
    expected = reference.generate(prompt, 24)

    generation = ort_fp32.generate(prompt, 24)

    assert generation.text == expected.text
    assert generation.complete == expected.complete
    assert generation.token_logprobs == pytest.approx(expected.token_logprobs, abs=1e-4)


def test_ort_stops_at_eos_like_transformers(tiny_dir, ort_fp32_dir):
    tokens, _ = _hf_greedy(tiny_dir, PROMPTS[1], 10)
    reference, ort = TransformersGenerator(tiny_dir), OrtGenAIGenerator(ort_fp32_dir)
    reference.eos_token_ids = ort.eos_token_ids = frozenset({tokens[3]})

    expected, generation = reference.generate(PROMPTS[1], 10), ort.generate(PROMPTS[1], 10)

    assert generation.complete and expected.complete
    assert generation.text == expected.text
    assert len(generation.token_logprobs) == tokens.index(tokens[3])


def test_ort_export_is_self_contained(ort_fp32_dir, ort_fp32):
    names = {path.name for path in ort_fp32_dir.iterdir()}
    assert {"genai_config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json"} <= names
    assert ort_fp32.eos_token_ids == {2}
    assert not list(ort_fp32_dir.parent.glob(".fp32-*"))  # the scratch folder is gone


def test_ort_int4_export_generates(ort_dirs):
    # hidden 64 and MLP 128 are multiples of the int4 block size (32), so this export works.
    generator = OrtGenAIGenerator(ort_dirs["int4"])

    generation = generator.generate(PROMPTS[0], 9)

    assert len(generation.token_logprobs) == 9
    assert all(lp <= 0.0 for lp in generation.token_logprobs)


def test_export_rejects_an_unknown_precision(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="precision"):
        export_ort_genai(tiny_dir, tmp_path / "out", precision="int3")


def test_export_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(ExportFailed, match="config.json"):
        export_ort_genai(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [([], 0.0), ([0.0, 0.0], 1.0), ([-1.0], math.exp(-1.0)), ([-0.5, -1.5], math.exp(-1.0))],
)
def test_confidence_is_the_geometric_mean_probability(logprobs, expected):
    assert confidence_from_logprobs(logprobs) == pytest.approx(expected)


def test_confidence_stays_within_bounds():
    assert confidence_from_logprobs([1e-7]) == 1.0  # rounding can make a logprob a hair above 0
    assert confidence_from_logprobs([-1e6]) == 0.0


@dataclass
class ScriptedGenerator:
    text: str
    token_logprobs: list[float] = field(default_factory=lambda: [-0.1, -0.3])
    complete: bool = True
    calls: list[tuple[str, int]] = field(default_factory=list)

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        self.calls.append((prompt, max_new_tokens))
        return Generation(self.text, self.token_logprobs, self.complete)


def test_student_decomposes_with_the_training_prompt():
    generator = ScriptedGenerator(
        "Alan Bean | birthPlace | Wheeler, Texas\nAlan Bean | job | Pilot"
    )
    student = GenerativeStudent(generator, max_new_tokens=50)

    answer = student.decompose("Alan  Bean was born\nin Wheeler, Texas.")

    assert answer.output == [
        Triple("Alan Bean", "birthPlace", "Wheeler, Texas"),
        Triple("Alan Bean", "job", "Pilot"),
    ]
    assert answer.confidence == pytest.approx(math.exp(-0.2))
    assert generator.calls == [(decomposition_prompt("Alan Bean was born in Wheeler, Texas."), 50)]


def test_student_recomposes_with_the_training_prompt():
    triples = [Triple("Aarhus", "leader", "Jacob Bundsgaard")]
    generator = ScriptedGenerator(" The leader of Aarhus is Jacob Bundsgaard.\n")

    answer = GenerativeStudent(generator).recompose(triples)

    assert answer.output == "The leader of Aarhus is Jacob Bundsgaard."
    assert generator.calls == [(recomposition_prompt(triples), 192)]


def test_student_raises_on_output_that_is_not_triples():
    student = GenerativeStudent(ScriptedGenerator("Alan Bean was born in Texas."))

    with pytest.raises(LinearFormatError):
        student.decompose("Alan Bean was born in Wheeler, Texas.")


def test_student_raises_on_empty_text():
    student = GenerativeStudent(ScriptedGenerator("  \n"))

    with pytest.raises(ValueError, match="no text"):
        student.recompose([Triple("Aarhus", "leader", "Jacob Bundsgaard")])


def test_student_raises_when_the_model_never_stopped():
    # The last triple may be cut short ("Wheeler, Tex"), which would still parse.
    student = GenerativeStudent(ScriptedGenerator("A | b | Wheeler, Tex", complete=False))

    with pytest.raises(IncompleteGeneration):
        student.decompose("Alan Bean was born in Wheeler, Texas.")


def test_student_on_a_random_model_raises_rather_than_answering(reference):
    with pytest.raises(ValueError):
        GenerativeStudent(reference, max_new_tokens=16).decompose("Alan Bean was born in Texas.")


def _spec(backend: str, artifact: Path) -> StudentSpec:
    return StudentSpec(
        version_id=1,
        direction="decomposition",
        kind="generative",
        backend=backend,
        base_model="tiny",
        artifact_path=str(artifact),
    )


def test_loader_serves_transformers_from_merged(tiny_dir):
    student = load_generative_student(_spec("transformers", tiny_dir.parent))

    assert isinstance(student.generator, TransformersGenerator)
    assert student.generator.model_dir == tiny_dir


def test_loader_serves_onnx_from_ort_genai(ort_fp32_dir, tmp_path):
    shutil.copytree(ort_fp32_dir, tmp_path / "ort-genai")

    student = load_generative_student(_spec("onnx", tmp_path))

    assert isinstance(student.generator, OrtGenAIGenerator)
    assert student.generator.model_dir == tmp_path / "ort-genai"


def test_loader_refuses_an_unknown_backend(tmp_path):
    with pytest.raises(BackendUnavailable, match="abacus"):
        load_generative_student(_spec("abacus", tmp_path))


@pytest.mark.parametrize("backend", ["transformers", "onnx"])
def test_loader_reports_a_missing_artifact(tmp_path, backend):
    with pytest.raises(BackendUnavailable, match="no model folder"):
        load_generative_student(_spec(backend, tmp_path / "gone"))
