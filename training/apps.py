from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        from training import signals  # noqa: F401  (connects the retraining trigger)
