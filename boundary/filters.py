"""Query filters of the list endpoints. An empty value means "no filter"; any other value that
is not valid is a 400 naming the parameter (DjangoFilterBackend raises the form's errors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from boundary.models import BoundaryCall, ModelVersion


class UTCDateTimeField(IsoDateTimeField):  # type: ignore[misc]
    """An ISO 8601 datetime, as the same instant in UTC.

    Any offset Python accepts (up to ±23:59) is valid, though PostgreSQL stores at most ±15:59,
    so the database only ever sees UTC; a naive value is read in the current time zone. An
    instant outside years 1-9999 once in UTC (``9999-12-31T23:59:59-05:00``) is invalid.
    """

    default_error_messages = {
        "utc_range": "Must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z "
        "once converted to UTC.",
    }

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                self.error_messages["utc_range"], code="utc_range"
            ) from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    field_class = UTCDateTimeField


_MAX_ID = 2**63 - 1  # BigAutoField


@extend_schema_field(
    {
        "type": "integer",
        "minimum": 1,
        "maximum": _MAX_ID,
        "description": "The id of the model version that answered.",
    }
)
class ModelVersionIdFilter(django_filters.NumberFilter):  # type: ignore[misc]
    """A model version id: any whole number from 1 to the largest id the database stores.

    django-filter's default for a foreign key (a ModelChoiceFilter) answers an id that names no
    version with a 400, though it is a well-formed filter that matches nothing: an empty page.
    """

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=_MAX_ID, **kwargs)


class StrictBooleanField(forms.Field):
    """true / false (or 1 / 0, any case); anything else is invalid rather than ignored.

    Django's NullBooleanField (with its NullBooleanSelect widget) reads an unknown value as
    "no filter", so `is_active=yes` listed every version.
    """

    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            return value
        try:
            return self._VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError("Must be true or false.", code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):  # type: ignore[misc]
    field_class = StrictBooleanField


# django-filter ships no type information, so FilterSet is Any to mypy.
class BoundaryCallFilter(django_filters.FilterSet):  # type: ignore[misc]
    model_version = ModelVersionIdFilter()
    created_after = UTCDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Created at or after this ISO 8601 datetime (any UTC offset; naive: UTC).",
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Created before this ISO 8601 datetime (any UTC offset; naive: UTC).",
    )

    class Meta:
        model = BoundaryCall
        fields = ["direction", "served_by", "model_version", "review_status", "split"]


class ModelVersionFilter(django_filters.FilterSet):  # type: ignore[misc]
    is_active = StrictBooleanFilter()

    class Meta:
        model = ModelVersion
        fields = ["direction", "kind", "status", "is_active"]
