"""From a version's spec to its runtime: the one place that knows which code serves what.

`RUNTIMES` maps (kind, backend) to a function that builds the runtime directly; `register_all`
(called from BoundaryConfig.ready) installs `load_version` for every backend in it: the runtime
over this host's copy of the version's artefact (boundary.artifacts fetches it from the artefact
store when one is configured).

Imports happen inside the loaders: torch and onnxruntime take seconds to import, and most
processes (a manage.py command, a web process with no active model) never need them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from django.conf import settings

from boundary.artifacts import local_artifact
from boundary.students import (
    BackendUnavailable,
    Loader,
    StudentBackend,
    StudentSpec,
    register_backend,
)

__all__ = ["RUNTIMES", "load_runtime", "load_version", "register_all"]


def load_transformers(spec: StudentSpec) -> StudentBackend:
    """The reference runtime over the merged HF folder."""
    from boundary.generation import GenerativeStudent, TransformersGenerator

    return GenerativeStudent(TransformersGenerator(Path(spec.artifact_path) / "merged"))


def load_ort_genai(spec: StudentSpec) -> StudentBackend:
    """The fast CPU runtime over the onnxruntime-genai export."""
    from boundary.generation import GenerativeStudent, OrtGenAIGenerator

    return GenerativeStudent(OrtGenAIGenerator(Path(spec.artifact_path) / "ort-genai"))


def load_mlx(spec: StudentSpec) -> StudentBackend:
    """Apple Silicon: the same merged HF folder, through mlx_lm."""
    from boundary.generation import GenerativeStudent
    from boundary.mlx_backend import MLXGenerator

    return GenerativeStudent(MLXGenerator(Path(spec.artifact_path) / "merged"))


def load_encoder(spec: StudentSpec) -> StudentBackend:
    """The decomposition encoder's ONNX graphs."""
    from boundary.encoder import EncoderStudent

    folder = Path(spec.artifact_path) / "encoder"
    if not (folder / "model.onnx").is_file():
        raise BackendUnavailable(f"v{spec.version_id} has no encoder model at {folder}")
    return EncoderStudent(folder, threads=settings.VALENCE_ENCODER_THREADS)


RUNTIMES: dict[tuple[str, str], Loader] = {
    ("generative", "transformers"): load_transformers,
    ("generative", "onnx"): load_ort_genai,
    ("generative", "mlx"): load_mlx,
    ("encoder", "onnx"): load_encoder,
}


def load_runtime(spec: StudentSpec) -> StudentBackend:
    """Build the runtime for `spec`, or BackendUnavailable when none serves its kind/backend."""
    loader = RUNTIMES.get((spec.kind, spec.backend))
    if loader is None:
        raise BackendUnavailable(f"no {spec.kind} runtime for backend {spec.backend!r}")
    return loader(spec)


def load_version(spec: StudentSpec) -> StudentBackend:
    """A registry version's runtime, over this host's copy of its artefact."""
    folder = local_artifact(spec.version_id, spec.artifact_path)
    return load_runtime(replace(spec, artifact_path=str(folder)))


def register_all() -> None:
    for backend in sorted({backend for _, backend in RUNTIMES}):
        register_backend(backend, load_version)
