"""Every boundary call, and the registry of local models that answer them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.db.models import Count, Q

from boundary import directions
from boundary.students import StudentSpec

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Direction(models.TextChoices):
    """The choices for ``direction`` fields; the values live in ``boundary.directions``."""

    DECOMPOSITION = directions.DECOMPOSITION, "text → triples"
    RECOMPOSITION = directions.RECOMPOSITION, "triples → text"


class ServedBy(models.TextChoices):
    STUDENT = "student", "local model"
    TEACHER = "teacher", "LLM"
    DEGRADED = "degraded", "local model below threshold (LLM unavailable)"
    UNSERVED = "unserved", "nobody could answer"
    IMPORTED = "imported", "imported reference pair"
    MEMORY = "memory", "an earlier answer to the same input (LLM or reviewer), remembered"


class FallbackReason(models.TextChoices):
    """Why the LLM was asked (blank when a local model answered)."""

    NO_ACTIVE_MODEL = "no_active_model", "no active local model"
    LOW_CONFIDENCE = "low_confidence", "local answer below threshold"
    STUDENT_ERROR = "student_error", "local model failed"
    MODEL_LOADING = "model_loading", "local model still loading"


class CallOrigin(models.TextChoices):
    """The door a live call came in by (blank: stored by a command, an import or the audit)."""

    API = "api", "REST API"
    PLAYGROUND = "playground", "playground"


class ReviewStatus(models.TextChoices):
    UNREVIEWED = "unreviewed"
    ACCEPTED = "accepted"
    CORRECTED = "corrected"
    REJECTED = "rejected"


class Split(models.TextChoices):
    TRAIN = "train"
    EVAL = "eval"


class ModelKind(models.TextChoices):
    GENERATIVE = "generative"
    ENCODER = "encoder"


class ModelBackend(models.TextChoices):
    TRANSFORMERS = "transformers"
    ONNX = "onnx"
    MLX = "mlx"


class VersionStatus(models.TextChoices):
    QUEUED = "queued"
    TRAINING = "training"
    EVALUATING = "evaluating"
    READY = "ready"
    FAILED = "failed"
    RETIRED = "retired"


IN_FLIGHT = [VersionStatus.QUEUED, VersionStatus.TRAINING, VersionStatus.EVALUATING]

# The cascade asks cheaper stages first: an encoder (ONNX, ~10 ms) before a generator.
KIND_PRIORITY = {ModelKind.ENCODER: 0, ModelKind.GENERATIVE: 1}


class ModelVersionQuerySet(models.QuerySet["ModelVersion"]):
    def active(self) -> ModelVersionQuerySet:
        return self.filter(is_active=True)

    def with_recalibration_state(self) -> ModelVersionQuerySet:
        """Annotate `recalibrations_in_flight`: re-evaluations on new evidence queued or running
        (training.recalibration; counted through the reverse relation, so the request path never
        imports training)."""
        in_flight = Q(recalibrations__status__in=["queued", "running"])
        counted = self.annotate(recalibrations_in_flight=Count("recalibrations", filter=in_flight))
        return counted.order_by("-created_at")  # GROUP BY drops Meta.ordering

    def serving_order(self, direction: str) -> list[ModelVersion]:
        """Active versions of a direction, cheapest stage first."""
        versions = list(self.active().filter(direction=direction))
        return sorted(versions, key=lambda v: KIND_PRIORITY.get(ModelKind(v.kind), 99))


class ModelVersion(models.Model):
    direction = models.CharField(max_length=16, choices=Direction.choices)
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    backend = models.CharField(max_length=16, choices=ModelBackend.choices)
    base_model = models.CharField(max_length=300, help_text="HF model id or local path.")
    artifact_path = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.QUEUED
    )
    is_active = models.BooleanField(default=False, help_text="Serves traffic (the alias).")
    metrics = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Calibrated confidence at or above which it answers."
    )
    expected_fallback_rate = models.FloatField(null=True, blank=True)
    train_count = models.PositiveIntegerField(default=0)
    eval_count = models.PositiveIntegerField(default=0)
    data_watermark = models.BigIntegerField(
        null=True, blank=True, help_text="Highest BoundaryCall id in its training data."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["direction", "kind"],
                condition=Q(is_active=True),
                name="one_active_version_per_direction_and_kind",
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(status="ready"),
                name="only_ready_versions_are_active",
            ),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gte=0, threshold__lte=1),
                name="threshold_is_a_probability",
            ),
            # Never two trainings at once per direction and kind, even with several workers.
            models.UniqueConstraint(
                fields=["direction", "kind"],
                condition=Q(status__in=["queued", "training", "evaluating"]),
                name="one_training_per_direction_and_kind",
            ),
        ]
        indexes = [models.Index(fields=["direction", "status"])]
        permissions = [("promote_modelversion", "Can promote and roll back model versions")]

    def __str__(self) -> str:
        return f"v{self.pk} {self.direction}/{self.kind} ({self.status})"

    def student_spec(self) -> StudentSpec:
        """What a backend loader needs, without the ORM (loaders stay Django-free)."""
        return StudentSpec(
            version_id=self.pk,
            direction=self.direction,
            kind=self.kind,
            backend=self.backend,
            base_model=self.base_model,
            artifact_path=self.artifact_path,
        )

    @property
    def headline_metric(self) -> float | None:
        """The number the promotion gate compares (see training.evaluation.evaluate)."""
        return (self.metrics or {}).get("headline")

    @property
    def calibration(self) -> dict[str, Any]:
        """What calibration chose and what it delivered on examples it did not choose on."""
        return (self.metrics or {}).get("calibration") or {}

    @property
    def is_calibrated(self) -> bool:
        """Only a calibrated version may answer alone (the cascade and the gate both check)."""
        return self.threshold is not None and self.calibration.get("calibrated", True) is not False

    @property
    def committee(self) -> dict[str, Any]:
        """Its agreement with an encoder, measured on held-out data (training.committee)."""
        return (self.metrics or {}).get("committee") or {}

    @property
    def committee_partner(self) -> int | None:
        """The version it may answer with where the two agree; None when that was not shown
        to reach the target."""
        partner = self.committee.get("partner")
        shown = committee_shows_target(self.committee)
        return partner if shown and isinstance(partner, int) else None


def committee_shows_target(promise: dict[str, Any]) -> bool:
    """Whether a measured committee (training.committee) may answer: enough agreed held-out
    answers, and at least its target of them right. Judged when read, under today's settings,
    so raising VALENCE_COMMITTEE_MIN_AGREED holds back committees measured before."""
    agreement, target = promise.get("agreement"), promise.get("target")
    return (
        promise.get("agreed", 0) >= settings.VALENCE_COMMITTEE_MIN_AGREED
        and agreement is not None
        and target is not None
        and agreement >= target
    )


class VersionEvent(models.Model):
    """Audit log of the registry: every promotion, rollback, refusal, export and import, with
    who and why."""

    class Action(models.TextChoices):
        PROMOTE = "promote"
        FORCE_PROMOTE = "force_promote"
        ROLLBACK = "rollback"
        REFUSED = "refused", "promotion refused by the gate"
        DEMOTE = "demote", "demoted by the live audit"
        EXPORT = "export", "exported"
        IMPORT = "import", "imported"

    action = models.CharField(max_length=16, choices=Action.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="events")
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    verdict = models.JSONField(default=dict, blank=True, help_text="The gate's verdict.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        who = self.actor or "system"
        return f"{self.action} v{self.version_id} by {who}"


class BoundaryCallQuerySet(models.QuerySet["BoundaryCall"]):
    def visible_to(self, user: User | AnonymousUser) -> BoundaryCallQuerySet:
        """Staff see every call; an API client sees its own."""
        if user.is_staff:
            return self
        if isinstance(user, AnonymousUser):  # the API requires a login; never a match anyway
            return self.none()
        return self.filter(client=user)

    def eligible_for_training(self, direction: str, quality_floor: float) -> BoundaryCallQuerySet:
        """Calls whose (input, output) may teach a student, best tier first in training.datasets.

        Corrections, accepted answers, imported references, and unreviewed LLM answers whose
        score (if any) reaches the floor. Never rejected calls, and never a student's own
        unreviewed answers: training on them would only confirm its mistakes.
        """
        corrected = Q(review_status=ReviewStatus.CORRECTED, corrected_output__isnull=False)
        accepted = Q(review_status=ReviewStatus.ACCEPTED, output__isnull=False)
        unreviewed_teacher = (
            Q(review_status=ReviewStatus.UNREVIEWED, output__isnull=False)
            & Q(served_by__in=[ServedBy.TEACHER, ServedBy.IMPORTED])
            & (Q(quality_score__isnull=True) | Q(quality_score__gte=quality_floor))
        )
        return self.filter(direction=direction).filter(corrected | accepted | unreviewed_teacher)


class BoundaryCall(models.Model):
    direction = models.CharField(max_length=16, choices=Direction.choices)
    input = models.JSONField(help_text="Text (decomposition) or a list of triples.")
    output = models.JSONField(null=True, blank=True, help_text="Triples or text; null if unserved.")
    input_hash = models.CharField(max_length=64, help_text="Stable fingerprint of the input.")
    group_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="Split group: the triple set (or text) every wording of one fact shares.",
    )
    split = models.CharField(max_length=8, choices=Split.choices)

    served_by = models.CharField(max_length=16, choices=ServedBy.choices)
    # No index of its own: (model_version, created_at) below starts with it. Each index is
    # written by every stored call, inside the request.
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        db_index=False,
    )
    confidence = models.FloatField(null=True, blank=True)
    fallback_reason = models.CharField(max_length=32, choices=FallbackReason.choices, blank=True)
    teacher_error = models.CharField(max_length=32, blank=True, help_text="Code of the LLM fault.")
    diagnostics = models.JSONField(default=dict, blank=True)
    triple_sources = models.JSONField(
        default=list,
        blank=True,
        help_text="Decomposition: which stage produced each output triple, in output order "
        '({"stage", "version", "confidence"}).',
    )

    llm_model = models.CharField(max_length=100, blank=True)
    latency_ms = models.FloatField()
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    avoided_cost_usd = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Estimated LLM price of a call a local model answered.",
    )

    quality_score = models.FloatField(null=True, blank=True)
    corrected_output = models.JSONField(null=True, blank=True)
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.UNREVIEWED
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # The review console: who holds the item (until when), how much a review of it helps
    # (set when the call is stored, so the queue is an index scan), and a revision counter
    # that every review write bumps, so two reviewers never silently overwrite each other.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    review_priority = models.FloatField(default=0.0)
    review_revision = models.PositiveIntegerField(default=0)

    client = models.ForeignKey(  # indexed by (client, created_at) below
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="boundary_calls",
        db_index=False,
    )
    origin = models.CharField(
        max_length=16,
        choices=CallOrigin.choices,
        blank=True,
        default="",
        db_default="",  # rows written by raw SQL or COPY (bench-dashboards) have no origin
        help_text="The door the call came in by: the API or the playground (blank: stored by "
        "a command, an import or the live audit).",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = BoundaryCallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quality_score__isnull=True)
                | Q(quality_score__gte=0, quality_score__lte=1),
                name="quality_score_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=~Q(served_by__in=["student", "degraded"])
                | Q(model_version__isnull=False),
                name="local_answers_name_their_model",
            ),
        ]
        indexes = [
            models.Index(fields=["direction", "created_at"]),
            models.Index(fields=["direction", "served_by", "created_at"]),
            models.Index(fields=["model_version", "created_at"]),
            models.Index(fields=["review_status", "direction"]),
            models.Index(
                fields=["review_status", "-review_priority", "-id"], name="review_queue_order"
            ),
            models.Index(fields=["client", "created_at"]),
            models.Index(fields=["input_hash"]),
            models.Index(fields=["split", "direction"]),
        ]
        permissions = [
            ("review_call", "Can review calls in the console"),
            ("view_dashboards", "Can view the cost, latency and accuracy dashboards"),
        ]

    def __str__(self) -> str:
        return f"call {self.pk} {self.direction} by {self.served_by}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            self.review_priority = self.compute_review_priority()
        super().save(*args, **kwargs)

    def compute_review_priority(self) -> float:
        """How much a review of this call helps, higher first.

        Disagreement between a student and the teacher teaches most; an unsure answer served
        as is (degraded) needs checking; then other fallbacks; then low confidence. Imported
        references and unserved calls (nothing to review) come last.
        """
        if self.served_by in (ServedBy.IMPORTED, ServedBy.UNSERVED) or self.output is None:
            return 0.0
        priority = 0.0
        student = (self.diagnostics or {}).get("student_answer")
        if student is not None and student.get("output") != self.output:
            priority += 3.0
        if self.served_by == ServedBy.DEGRADED:
            priority += 2.0
        elif self.fallback_reason:
            priority += 1.0
        if self.confidence is not None:
            priority += 1.0 - self.confidence
        return priority

    def label(self) -> tuple[str, Any]:
        """What this call teaches, and of which kind: a reviewer's correction ("corrected"), an
        accepted or imported answer ("accepted", "imported"), else the LLM's own complete answer
        ("teacher": where the served answer mixed local triples with the LLM's, the LLM's, so a
        student is never trained on its own guesses). Training (training.datasets) and memory
        (boundary.memory) both read it; which calls qualify at all is
        `BoundaryCallQuerySet.eligible_for_training`."""
        if self.review_status == ReviewStatus.CORRECTED:
            return "corrected", self.corrected_output
        if self.review_status == ReviewStatus.ACCEPTED:
            return "accepted", self.output
        if self.served_by == ServedBy.IMPORTED:
            return "imported", self.output
        return "teacher", (self.diagnostics or {}).get("teacher_output", self.output)

    @property
    def degraded(self) -> bool:
        return self.served_by == ServedBy.DEGRADED
