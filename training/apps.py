from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """No signals: retraining is a django-q2 schedule (migration 0003), not a request hook."""

    name = "training"
