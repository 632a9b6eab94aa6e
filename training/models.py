"""What ran, on which data, how far it got, and what it scored."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Concat
from django.utils import timezone

from boundary.models import BoundaryCall, Direction, ModelVersion


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
            log=Concat(models.F("log"), models.Value(f"{stamp} {line}\n"))
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


class LiveAuditQuerySet(models.QuerySet["LiveAudit"]):
    def per_version(self, version_ids: list[int]) -> dict[int, dict[str, int]]:
        """Audit counts of each version by outcome: one GROUP BY on the (version, status) index."""
        done = Q(status=LiveAudit.Status.DONE)
        rows = (
            self.filter(version_id__in=version_ids)
            .order_by()
            .values("version_id")
            .annotate(
                audits=Count("id", filter=done),
                agreed=Count("id", filter=done & Q(agreed=True)),
                failed=Count("id", filter=Q(status=LiveAudit.Status.FAILED)),
                skipped=Count("id", filter=Q(status=LiveAudit.Status.SKIPPED)),
                pending=Count("id", filter=Q(status=LiveAudit.Status.PENDING)),
            )
        )
        return {row.pop("version_id"): row for row in rows}

    def spend_since(self, start: datetime) -> tuple[Decimal, Decimal]:
        """What the audit paid the LLM since `start`, and its dearest single call."""
        totals = self.filter(audited_at__gte=start).aggregate(
            spent=Sum("cost_usd"), dearest=Max("cost_usd")
        )
        return totals["spent"] or Decimal(0), totals["dearest"] or Decimal(0)


class LiveAudit(models.Model):
    """One locally served answer re-asked to the LLM after the fact (see training.audit).

    `agreed` is null until the LLM has answered (pending) or when it could not (failed,
    skipped): only done audits count towards a version's live agreement.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "being asked"
        DONE = "done"
        FAILED = "failed", "the LLM could not answer"
        SKIPPED = "skipped", "not asked (daily cap, no price)"

    call = models.OneToOneField(
        BoundaryCall,
        on_delete=models.CASCADE,
        related_name="live_audit",
        help_text="The locally served call re-asked to the LLM.",
    )
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="live_audits")
    direction = models.CharField(max_length=16, choices=Direction.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    agreed = models.BooleanField(null=True, blank=True)
    triple_precision = models.FloatField(
        null=True, blank=True, help_text="Decomposition: share of local triples the LLM stated."
    )
    teacher_output = models.JSONField(
        null=True, blank=True, help_text="The LLM's triples (of the text, or of the local text)."
    )
    details = models.JSONField(default=dict, blank=True, help_text="Round-trip counts.")
    teacher_call = models.OneToOneField(
        BoundaryCall,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_source",
        help_text="The LLM's answer, stored as a call: training data like any other.",
    )
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    audited_at = models.DateTimeField(null=True, blank=True, help_text="When the LLM answered.")

    objects = LiveAuditQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["version", "status"]),
            models.Index(fields=["audited_at"]),
        ]

    def __str__(self) -> str:
        return f"audit of call {self.call_id} ({self.status})"


class Recalibration(models.Model):
    """One re-evaluation of a candidate on traffic stored after its training data.

    A candidate the gate refused only because its eval split was too small to show the target
    agreement gets a second chance once the LLM has answered enough new calls it never trained
    on (see training.recalibration). At most one is in flight per version.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="recalibrations"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    evidence = models.PositiveIntegerField(
        help_text="Labelled examples it never trained on, counted when it was queued."
    )
    calibrated = models.BooleanField(null=True, blank=True)
    promoted = models.BooleanField(null=True, blank=True)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Chosen at this look; the next one measures it."
    )
    through_call_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The newest label this look chose on."
    )
    outcome = models.TextField(blank=True, help_text="What calibration chose; why not promoted.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(status__in=["queued", "running"]),
                name="one_recalibration_in_flight_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"recalibration of v{self.version_id} on {self.evidence} ({self.status})"
