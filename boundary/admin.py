from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from boundary.models import BoundaryCall, ModelVersion


@admin.register(BoundaryCall)
class BoundaryCallAdmin(admin.ModelAdmin):
    """A read-only browser: calls are evidence and training data, never edited by hand here."""

    list_display = [
        "id",
        "created_at",
        "direction",
        "served_by",
        "model_version",
        "confidence",
        "fallback_reason",
        "teacher_error",
        "latency_ms",
        "cost_usd",
        "review_status",
        "client",
    ]
    list_filter = [
        "direction",
        "served_by",
        "model_version",
        "fallback_reason",
        "review_status",
        "split",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["input", "output", "corrected_output", "llm_model"]
    date_hierarchy = "created_at"
    list_select_related = ["model_version", "client"]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is wasteful

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "direction",
        "kind",
        "backend",
        "status",
        "is_active",
        "threshold",
        "train_count",
        "eval_count",
        "created_at",
    ]
    list_filter = ["direction", "kind", "status", "is_active"]
    search_fields = ["base_model", "artifact_path"]
    readonly_fields = ["created_at", "updated_at", "promoted_at", "promoted_by", "created_by"]
