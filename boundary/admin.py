from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from boundary.models import BoundaryCall, ModelVersion, VersionEvent
from boundary.registry import RegistryError, do_promote, do_rollback, gate_verdict

# ModelAdmin is generic only in django-stubs: the runtime class has no __class_getitem__ (and
# django_stubs_ext, whose monkeypatch() would add one, is a dev-only dependency here).
if TYPE_CHECKING:
    _AnyModelAdmin = admin.ModelAdmin[Any]
    _ModelVersionAdminBase = admin.ModelAdmin[ModelVersion]
else:
    _AnyModelAdmin = _ModelVersionAdminBase = admin.ModelAdmin


class ReadOnlyAdmin(_AnyModelAdmin):
    """Evidence, never edited by hand: browse and filter only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BoundaryCall)
class BoundaryCallAdmin(ReadOnlyAdmin):
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
        "origin",
    ]
    list_filter = [
        "direction",
        "served_by",
        "origin",
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


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Kept in the audit log."
    )
    force = forms.BooleanField(required=False, help_text="Promote even if the gate refuses.")


@admin.register(ModelVersion)
class ModelVersionAdmin(_ModelVersionAdminBase):
    """The registry. Promote and roll back go through the gate and the audit log, as everywhere."""

    actions = ["promote", "rollback"]
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
    # What the gate, calibration and training own: an edit here would bypass the gate and the
    # audit log (an uncalibrated version made to answer alone, say). Promote and roll back are
    # the actions above, which go through boundary.registry.
    readonly_fields = [
        "status",
        "is_active",
        "threshold",
        "expected_fallback_rate",
        "metrics",
        "train_count",
        "eval_count",
        "data_watermark",
        "artifact_path",
        "created_at",
        "updated_at",
        "promoted_at",
        "promoted_by",
        "created_by",
    ]

    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("boundary.promote_modelversion")

    @admin.action(
        description="Promote the selected version (gate, reason)", permissions=["promote"]
    )
    def promote(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion]
    ) -> TemplateResponse | None:
        return self._confirm(request, queryset, "promote")

    @admin.action(
        description="Roll back the selected active version (reason)", permissions=["promote"]
    )
    def rollback(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion]
    ) -> TemplateResponse | None:
        return self._confirm(request, queryset, "rollback")

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion], action: str
    ) -> TemplateResponse | None:
        """First a page with the gate's verdict and a reason field; then the registry call."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return None
        version = queryset.get()
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._apply(request, version, action, form.cleaned_data)
            return None
        return TemplateResponse(
            request,
            "admin/boundary/modelversion/confirm.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"{action.capitalize()} v{version.pk}?",
                "version": version,
                "action": action,
                "verdict": gate_verdict(version) if action == "promote" else None,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _apply(
        self, request: HttpRequest, version: ModelVersion, action: str, data: dict[str, Any]
    ) -> None:
        try:
            if action == "promote":
                do_promote(
                    version, acting_user=request.user, reason=data["reason"], force=data["force"]
                )
                self.message_user(request, f"v{version.pk} promoted.", messages.SUCCESS)
            else:
                if not version.is_active:
                    raise RegistryError(f"v{version.pk} is not active; nothing to roll back")
                event = do_rollback(
                    version.direction, version.kind, acting_user=request.user, reason=data["reason"]
                )
                restored = event.previous_version_id
                self.message_user(
                    request,
                    f"v{version.pk} rolled back; "
                    + (f"v{restored} serves again." if restored else "the LLM serves again."),
                    messages.SUCCESS,
                )
        except RegistryError as exc:  # PromotionRefused included: the refusal is logged
            self.message_user(request, f"v{version.pk}: {exc}", messages.ERROR)


@admin.register(VersionEvent)
class VersionEventAdmin(ReadOnlyAdmin):
    """The audit log: read-only, newest first."""

    list_display = ["created_at", "action", "version", "previous_version", "actor", "reason"]
    list_filter = ["action", "version__direction", "version__kind"]
    list_select_related = ["version", "previous_version", "actor"]
