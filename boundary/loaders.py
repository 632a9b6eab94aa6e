"""Loaders for the registry's backends, registered at start-up (see BoundaryConfig.ready).

Imports happen inside the loaders: torch and onnxruntime take seconds to import, and most
processes (a manage.py command, a web process with no active model) never need them.
"""

from __future__ import annotations

from boundary.students import StudentBackend, StudentSpec, register_backend


def load_generative(spec: StudentSpec) -> StudentBackend:
    from boundary.generation import load_generative_student

    return load_generative_student(spec)


def register_all() -> None:
    for backend in ("transformers", "onnx", "mlx"):
        register_backend(backend, load_generative)
