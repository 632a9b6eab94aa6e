"""django-q2 tasks: plain functions taking primitive ids (see STYLE.md)."""

from __future__ import annotations

from training.pipeline import run_training


def train_version(version_id: int) -> str:
    version = run_training(version_id)
    return f"v{version.pk} {version.status}"
