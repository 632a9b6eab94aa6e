"""Where model jobs (trainings, recalibrations, evaluations) are queued for django-q2."""

from __future__ import annotations

from django.conf import settings


def model_job_options() -> dict[str, str]:
    """`async_task` options for a job that loads or trains a model: the training queue when
    `VALENCE_TRAINING_QUEUE` names one (a GPU worker consumes it), else the default queue."""
    queue: str = settings.VALENCE_TRAINING_QUEUE
    return {"cluster": queue} if queue else {}
