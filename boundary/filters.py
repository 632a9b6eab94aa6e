from __future__ import annotations

import django_filters

from boundary.models import BoundaryCall, ModelVersion


# django-filter ships no type information, so FilterSet is Any to mypy.
class BoundaryCallFilter(django_filters.FilterSet):  # type: ignore[misc]
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = BoundaryCall
        fields = ["direction", "served_by", "model_version", "review_status", "split"]


class ModelVersionFilter(django_filters.FilterSet):  # type: ignore[misc]
    class Meta:
        model = ModelVersion
        fields = ["direction", "kind", "status", "is_active"]
