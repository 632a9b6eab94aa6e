"""Loaders for the registry's backends, registered at start-up (see BoundaryConfig.ready).

Imports happen inside the loaders: torch and onnxruntime take seconds to import, and most
processes (a manage.py command, a web process with no active model) never need them.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from boundary.students import BackendUnavailable, StudentBackend, StudentSpec, register_backend


def load_generative(spec: StudentSpec) -> StudentBackend:
    from boundary.generation import load_generative_student

    return load_generative_student(spec)


def load_encoder(spec: StudentSpec) -> StudentBackend:
    from boundary.encoder import EncoderStudent

    folder = Path(spec.artifact_path) / "encoder"
    if not (folder / "model.onnx").is_file():
        raise BackendUnavailable(f"v{spec.version_id} has no encoder model at {folder}")
    return EncoderStudent(folder, threads=settings.VALENCE_ENCODER_THREADS)


def load_onnx(spec: StudentSpec) -> StudentBackend:
    """Both kinds export to ONNX: an encoder graph or an onnxruntime-genai generator."""
    if spec.kind == "encoder":
        return load_encoder(spec)
    return load_generative(spec)


def register_all() -> None:
    register_backend("onnx", load_onnx)
    for backend in ("transformers", "mlx"):
        register_backend(backend, load_generative)
