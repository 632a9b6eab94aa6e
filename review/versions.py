"""The model versions page: metrics side by side, live training progress, promote / rollback,
export / import.

Promotion and rollback go through boundary.registry (the gate, the audit log), exactly as the
commands and the admin actions do; this page only shows the verdict first and asks for a reason.
Export and import go through boundary.archive, as the export-version / import-version commands do.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from boundary.archive import (
    EXPORTABLE,
    ArchiveError,
    do_export_version,
    do_import_version,
    max_archive_bytes,
)
from boundary.models import IN_FLIGHT, ModelVersion, VersionEvent, VersionStatus
from boundary.registry import PromotionRefused, RegistryError, do_promote, do_rollback, gate_verdict
from review.roles import PROMOTE, VIEW_VERSIONS, requires
from training.audit import audit_overview
from training.models import TrainingRun
from training.trigger import queue_training

# What "Train now" offers: every student kind a direction can train (the encoder only decomposes).
TRAINABLE = [
    ("decomposition", "encoder"),
    ("decomposition", "generative"),
    ("recomposition", "generative"),
]

NUL = "\x00"  # no form sends one, and PostgreSQL cannot store it in a reason
NUL_IN_REASON = "A reason must not contain NUL characters."


@require_GET
@requires(VIEW_VERSIONS)
def versions(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    listed = (
        ModelVersion.objects.select_related("training_run", "promoted_by")
        .prefetch_related("recalibrations")
        .order_by("direction", "kind", "-id")[:100]
    )
    can_promote = request.user.has_perm(PROMOTE)
    promotable = (VersionStatus.READY, VersionStatus.RETIRED)
    # (version, the promotion gate's verdict, or None where it cannot be promoted from here)
    rows = [
        (version, gate_verdict(version) if can_promote and version.status in promotable else None)
        for version in listed
    ]
    events = VersionEvent.objects.select_related("actor", "version", "previous_version")[:30]
    active = list(ModelVersion.objects.active().order_by("direction", "kind"))
    return render(
        request,
        "review/versions.html",
        {
            "versions": rows,
            "events": events,
            "can_promote": can_promote,
            "in_flight": IN_FLIGHT,
            "audit": audit_overview(active),
            "trainable": TRAINABLE,
            "exportable": EXPORTABLE,
            # The request-size middleware answers 413 before any view sees a larger upload.
            "upload_limit": max_archive_bytes(),
        },
        status=status,
    )


@require_POST
@requires(PROMOTE)
def train(request: HttpRequest) -> HttpResponse:
    """Queue a training now: the worker runs it, and its row shows live progress."""
    direction, _, kind = request.POST.get("student", "").partition(":")
    if (direction, kind) not in TRAINABLE:
        messages.error(request, "Choose a direction and a kind of student to train.")
        return redirect("review:versions")
    version = queue_training(
        direction, kind=kind, trigger=TrainingRun.Trigger.MANUAL, acting_user=request.user
    )
    if version is None:
        messages.error(request, f"A {direction} {kind} training is already queued or running.")
    else:
        messages.success(
            request, f"v{version.pk} queued: the worker trains {direction} ({kind}); see its row."
        )
    return redirect("review:versions")


@require_GET
@requires(VIEW_VERSIONS)
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion.objects.select_related("training_run"), pk=pk)
    return render(
        request, "review/versions.html#progress", {"version": version, "in_flight": IN_FLIGHT}
    )


@require_POST
@requires(PROMOTE)
def promote(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    reason = request.POST.get("reason", "").strip()
    force = request.POST.get("force") == "on"
    if NUL in reason:
        messages.error(request, NUL_IN_REASON)
        return redirect("review:versions")
    try:
        do_promote(version, acting_user=request.user, reason=reason, force=force)
    except PromotionRefused as refused:
        messages.error(request, f"v{pk} was not promoted: {refused}")
    except RegistryError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"v{pk} now serves {version.direction} ({version.kind}).")
    return redirect("review:versions")


@require_POST
@requires(PROMOTE)
def rollback(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    reason = request.POST.get("reason", "").strip()
    if not version.is_active:
        messages.error(request, f"v{pk} is not serving; only the active version rolls back.")
        return redirect("review:versions")
    if not reason:
        messages.error(request, "A rollback needs a reason.")
        return redirect("review:versions")
    if NUL in reason:
        messages.error(request, NUL_IN_REASON)
        return redirect("review:versions")
    try:
        event = do_rollback(
            version.direction, version.kind, acting_user=request.user, reason=reason
        )
    except RegistryError as exc:
        messages.error(request, str(exc))
    else:
        restored = f"v{event.previous_version_id}" if event.previous_version_id else "the LLM"
        messages.success(request, f"Rolled back v{pk}; {restored} serves again.")
    return redirect("review:versions")


@require_POST
@requires(PROMOTE)
def export_version(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Download the version's artefact and metadata as a .tar.gz (logged as "exported")."""
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        export = do_export_version(version, acting_user=request.user)
    except ArchiveError as exc:
        messages.error(request, f"v{pk} cannot be exported: {exc}")
        return _page(request, status=409)
    response = StreamingHttpResponse(export.chunks(), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'  # ASCII: ours
    return response


@require_POST
@requires(PROMOTE)
def import_version(request: HttpRequest) -> HttpResponse:
    """Register an uploaded archive as a candidate; a refused one is a 400 that says why."""
    upload = request.FILES.get("archive")
    if upload is None:
        messages.error(request, "Choose a model archive (.tar.gz) to import.")
        return _page(request, status=400)
    name = upload.name or "the upload"
    try:
        version = do_import_version(
            upload, filename=name, size=upload.size, acting_user=request.user
        )
    except ArchiveError as exc:
        messages.error(request, f"{name} was not imported: {exc}")
        return _page(request, status=400)
    messages.success(
        request,
        f"v{version.pk} imported from {name} as a {version.direction} ({version.kind}) candidate; "
        "the worker evaluates it on this install's eval split before the gate can pass it.",
    )
    return redirect("review:versions")
