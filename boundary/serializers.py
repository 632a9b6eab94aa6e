"""API shapes. Validation is strict: a wrong JSON type is an error, never silently coerced."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from boundary.models import BoundaryCall, CallOrigin, Direction, FallbackReason, ModelVersion
from boundary.triples import FIELDS, Triple, TripleValidationError, parse_triples
from boundary.triples_settings import limits_from_settings


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """A ChoiceField that takes only strings and never echoes the input in its error.

    DRF's own repeats any value it refuses, so a lone surrogate (no UTF-8 form) would break the
    error response itself, and a deeply nested list would be printed whole.
    """

    default_error_messages = {"invalid_choice": "Must be one of: {choices}."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            self.fail("invalid_choice", choices=", ".join(self.choice_strings_to_values))
        return self.choice_strings_to_values[data]


class TripleSerializer(serializers.Serializer[dict[str, Any]]):
    """Documentation of one triple; validation goes through boundary.triples."""

    subject = serializers.CharField()
    predicate = serializers.CharField()
    object = serializers.CharField()


@extend_schema_field(TripleSerializer(many=True))
class TriplesField(serializers.Field[list[Triple], Any, list[dict[str, str]], Any]):
    default_error_messages = {"required": "This field is required."}

    def to_internal_value(self, data: Any) -> list[Triple]:
        # parse_triples refuses what no response or database could hold (NUL, lone surrogates).
        path = self.field_name or "triples"
        limits = limits_from_settings()
        triples: list[Triple] = []
        errors: dict[str, list[str]] = {}
        try:
            triples = parse_triples(data, limits, path=path)
        except TripleValidationError as exc:
            errors = exc.errors
        # parse_triples counts a field once stripped; the schema's maxLength, as sent.
        for field_path, message in _overlong_as_sent(data, limits.max_field_chars, path):
            problems = errors.setdefault(field_path, [])
            if not any(problem.startswith("Must be at most") for problem in problems):
                problems.append(message)
        if errors:
            raise serializers.ValidationError(errors)
        return triples

    def to_representation(self, value: list[Triple]) -> list[dict[str, str]]:
        return [t.as_dict() for t in value]


def _overlong_as_sent(data: Any, limit: int, path: str) -> list[tuple[str, str]]:
    """(path, problem) of each triple field longer than `limit` characters as sent."""
    if not isinstance(data, list):
        return []
    overlong = []
    for index, item in enumerate(data):
        if isinstance(item, dict):
            fields = [(name, item.get(name)) for name in FIELDS]
        elif isinstance(item, list) and len(item) == len(FIELDS):
            fields = list(zip(FIELDS, item, strict=True))
        else:
            continue
        for name, value in fields:
            if isinstance(value, str) and len(value) > limit:
                message = f"Must be at most {limit} characters; got {len(value)}."
                overlong.append((f"{path}[{index}].{name}", message))
    return overlong


class TextField(StrictCharField):
    """A text to decompose or a corrected text: no NUL, and at most VALENCE_MAX_TEXT_CHARS
    characters as sent, as the schema's maxLength counts them (not once stripped)."""

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        limit = settings.VALENCE_MAX_TEXT_CHARS
        if len(data) > limit:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {limit} characters (it has {len(data)})."
            )
        if "\x00" in text:
            raise serializers.ValidationError("Text must not contain NUL characters.")
        return text


class DecomposeRequestSerializer(serializers.Serializer[dict[str, Any]]):
    text = TextField()


class RecomposeRequestSerializer(serializers.Serializer[dict[str, Any]]):
    triples = TriplesField()


class CallMetaSerializer(serializers.Serializer[BoundaryCall]):
    call_id = serializers.IntegerField(source="pk")
    served_by = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version_id", allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    degraded = serializers.BooleanField()
    fallback_reason = serializers.CharField()
    latency_ms = serializers.FloatField()

    def to_representation(self, call: BoundaryCall) -> dict[str, Any]:
        """What DRF's generic representation gives for these fields (tests compare the two on
        every kind of call), without copying the declared fields for every answer, which cost
        a third of a millisecond of each API call. The declarations stay the schema."""
        return {
            "call_id": call.pk,
            "served_by": _text(call.served_by),
            "model_version": call.model_version_id,
            "confidence": _number(call.confidence),
            "degraded": call.degraded,
            "fallback_reason": _text(call.fallback_reason),
            "latency_ms": _number(call.latency_ms),
        }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class TripleSourceSerializer(serializers.Serializer[dict[str, Any]]):
    stage = serializers.ChoiceField(
        choices=["encoder", "generative", "committee", "memory", "teacher"],
        help_text="memory: an earlier LLM or reviewed answer to the same input",
    )
    version = serializers.IntegerField(allow_null=True, help_text="null for the teacher and memory")
    confidence = serializers.FloatField(
        allow_null=True, help_text="null for the teacher and memory"
    )


class SourcedTripleSerializer(TripleSerializer):
    # A declared field named "source" (the metaclass moves it out of the class namespace); the
    # stubs see it as overriding Field.source, the dotted-path attribute.
    source = TripleSourceSerializer(allow_null=True, help_text="Which stage produced it.")  # type: ignore[assignment]


class DecomposeResponseSerializer(CallMetaSerializer):
    triples = serializers.SerializerMethodField()

    @extend_schema_field(SourcedTripleSerializer(many=True))
    def get_triples(self, call: BoundaryCall) -> list[dict[str, Any]]:
        sources = call.triple_sources or []
        return [
            {**triple, "source": sources[i] if i < len(sources) else None}
            for i, triple in enumerate(call.output or [])
        ]

    def to_representation(self, call: BoundaryCall) -> dict[str, Any]:
        return {**super().to_representation(call), "triples": self.get_triples(call)}


class RecomposeResponseSerializer(CallMetaSerializer):
    text = serializers.CharField(source="output")

    def to_representation(self, call: BoundaryCall) -> dict[str, Any]:
        return {**super().to_representation(call), "text": _text(call.output)}


class FeedbackSerializer(serializers.Serializer[dict[str, Any]]):
    quality_score = StrictFloatField(min_value=0.0, max_value=1.0, required=False)
    corrected_triples = TriplesField(required=False)
    corrected_text = TextField(required=False)
    verdict = StrictChoiceField(choices=["accept", "reject"], required=False)
    revision = serializers.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        required=False,
        help_text=(
            "The call's `review_revision` this feedback is based on (or send it as If-Match). "
            "Required once the call has been reviewed: a stale one gets 409, none gets 428, so "
            "a reviewer's correction is never overwritten unseen."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not set(attrs) - {"revision"}:
            raise serializers.ValidationError(
                "Give at least one of quality_score, corrected_triples, corrected_text, verdict."
            )
        call: BoundaryCall = self.context["call"]
        wrong = (
            "corrected_text" if call.direction == Direction.DECOMPOSITION else "corrected_triples"
        )
        if wrong in attrs:
            raise serializers.ValidationError(
                {wrong: [f"Not applicable to a {call.direction} call."]}
            )
        corrected = "corrected_triples" in attrs or "corrected_text" in attrs
        if corrected and attrs.get("verdict") == "reject":
            raise serializers.ValidationError(
                {"verdict": ["A correction cannot also reject the call."]}
            )
        return attrs


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """Every error: `code` to branch on, `message` for people, and what its code adds."""

    code = serializers.CharField(help_text="Stable and snake_case: what clients branch on.")
    message = serializers.CharField(help_text="The first problem, for people.")
    # A declared field named "fields" (the metaclass moves it out of the class namespace); the
    # stubs see it as overriding Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="invalid_input: each invalid input's path and its problems.",
    )
    review_revision = serializers.IntegerField(
        required=False, help_text="stale_revision, revision_required: the call's current one."
    )
    retry_after_s = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="throttled, database_unavailable: seconds to wait before retrying.",
    )
    limit_bytes = serializers.IntegerField(
        required=False, help_text="payload_too_large: the largest body accepted."
    )
    reason = serializers.CharField(
        required=False, help_text="teacher_unavailable: the LLM fault, e.g. no_api_key."
    )
    fallback_reason = serializers.CharField(
        required=False, help_text="teacher_unavailable: why the LLM was asked."
    )
    call_id = serializers.IntegerField(
        required=False, help_text="teacher_unavailable: the stored call."
    )


class ErrorResponseSerializer(serializers.Serializer[dict[str, Any]]):
    error = ErrorSerializer()


class BoundaryCallSerializer(serializers.ModelSerializer[BoundaryCall]):
    degraded = serializers.BooleanField(read_only=True)
    # "" is a value, not an absence: a call a local model answered (or an imported one) had no
    # fallback, and the schema's enum must say so or clients reject every such call.
    fallback_reason = serializers.ChoiceField(
        choices=[("", "no fallback: answered locally, or imported"), *FallbackReason.choices],
        read_only=True,
    )
    # Blank too: a call stored by a command, an import or the live audit came in by no door.
    origin = serializers.ChoiceField(
        choices=[("", "stored by a command, an import or the live audit"), *CallOrigin.choices],
        read_only=True,
        help_text=BoundaryCall._meta.get_field("origin").help_text,
    )

    class Meta:
        model = BoundaryCall
        fields = [
            "id",
            "direction",
            "input",
            "output",
            "triple_sources",
            "served_by",
            "degraded",
            "model_version",
            "confidence",
            "fallback_reason",
            "teacher_error",
            "llm_model",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "avoided_cost_usd",
            "quality_score",
            "corrected_output",
            "review_status",
            "review_revision",
            "reviewed_at",
            "split",
            "origin",
            "created_at",
        ]
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer[ModelVersion]):
    is_calibrated = serializers.BooleanField(
        read_only=True,
        help_text="False: no confidence threshold reached the target; it never answers alone.",
    )
    recalibrating = serializers.SerializerMethodField(
        help_text="True while it is being evaluated again on traffic it never trained on."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "direction",
            "kind",
            "backend",
            "base_model",
            "status",
            "is_active",
            "metrics",
            "threshold",
            "is_calibrated",
            "recalibrating",
            "expected_fallback_rate",
            "train_count",
            "eval_count",
            "data_watermark",
            "created_at",
            "promoted_at",
        ]
        read_only_fields = fields

    def get_recalibrating(self, version: ModelVersion) -> bool:
        count = getattr(version, "recalibrations_in_flight", None)
        if count is None:  # not annotated (a single version): one query
            count = version.recalibrations.filter(status__in=["queued", "running"]).count()
        return bool(count)
