"""What ran, on which data, how far it got, and what it scored."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from boundary.models import ModelVersion


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", "enough new pairs"
        MANUAL = "manual", "command or admin"
        BOOTSTRAP = "bootstrap", "offline bootstrap"

    version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="training_run"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    config = models.JSONField(default=dict, blank=True, help_text="Hyper-parameters and data.")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress report.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training of v{self.version_id} ({self.status})"

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def append_log(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        TrainingRun.objects.filter(pk=self.pk).update(
            log=models.functions.Concat(models.F("log"), models.Value(f"{stamp} {line}\n"))
        )


class Evaluation(models.Model):
    """One scoring of a version on one data set (the eval split, or a reference file)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    data_source = models.CharField(max_length=500, help_text='"eval split" or a file path.')
    data_fingerprint = models.CharField(
        max_length=64, help_text="Hash of the inputs scored: same hash, comparable metrics."
    )
    count = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation of v{self.version_id} on {self.data_source}"
