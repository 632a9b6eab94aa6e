"""Load a newly active version in the background, so that no request waits for its download.

Without this, the first request to meet a promoted version fetched its artefact (seconds, and
minutes for a generative student in S3) and built its runtime while holding up its caller, and
`/readyz`, which checks that every active model loads, blocked the same way: after a
promotion, every host's probe hung at once and every host could leave the rotation together.

Now the first look at an active version this process has not loaded (a request, `/readyz`, or
the web process starting: valence_site.wsgi) starts one thread that loads it, and nobody waits:

- the cascade passes over a version still loading as it passes over a missing one (fallback
  reason `model_loading`): the next local stage or the LLM answers for those seconds. Only where
  nothing else could answer, with no LLM key, does a request wait for the load (a slow answer
  beats a 503), as every request did before.
- `/readyz` reports it as "loading" (boundary.views.readyz decides what that means for
  readiness).
- a load that fails is remembered for RETRY_AFTER_S, and the version passed over at once
  meanwhile: no request pays for a load that just failed; the next look after that retries.

VALENCE_LOAD_IN_BACKGROUND=0 turns it off: every caller loads in line, as before (the test
suite does, where fake students load instantly and a race would only add noise).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from boundary.students import (
    BackendUnavailable,
    StudentBackend,
    StudentSpec,
    cached_student,
    load_student,
)

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 30.0


class StillLoading(BackendUnavailable):
    """The version is loading in the background; it serves once loaded."""


@dataclass
class _Load:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    finished_at: float = 0.0
    # A retry's predecessor failed with this: /readyz keeps reporting it until the retry
    # succeeds, so that a broken model never shows as "loading" (ready) for a moment.
    previous_error: BaseException | None = None

    def failed_recently(self) -> bool:
        return (
            self.done.is_set()
            and self.error is not None
            and time.monotonic() - self.finished_at < RETRY_AFTER_S
        )


_loads: dict[int, _Load] = {}
_lock = threading.Lock()


def warm(spec: StudentSpec) -> _Load | None:
    """Start loading `spec`'s version unless it is loaded, loading or just failed.

    Returns the load to watch, or None when the version is loaded already.
    """
    if cached_student(spec.version_id) is not None:
        return None
    with _lock:
        load = _loads.get(spec.version_id)
        if load is not None and (not load.done.is_set() or load.failed_recently()):
            return load
        # New, failed long enough ago, or loaded once and since evicted from the cache.
        previous_error = load.error if load is not None else None
        load = _loads[spec.version_id] = _Load(previous_error=previous_error)
    threading.Thread(
        target=_load_in_background,
        args=(spec, load),
        name=f"valence-load-v{spec.version_id}",
        daemon=True,
    ).start()
    return load


def _load_in_background(spec: StudentSpec, load: _Load) -> None:
    started = time.perf_counter()
    try:
        load_student(spec)
    except BaseException as exc:  # kept for the callers that wait on it and for /readyz
        load.error = exc
        logger.warning(
            "v%s (%s/%s) could not be loaded; passed over for %.0f s: %s",
            spec.version_id,
            spec.direction,
            spec.kind,
            RETRY_AFTER_S,
            exc,
        )
    else:
        logger.info(
            "v%s (%s/%s) loaded in the background in %.1f s",
            spec.version_id,
            spec.direction,
            spec.kind,
            time.perf_counter() - started,
        )
    finally:
        load.finished_at = time.monotonic()
        load.done.set()


def ready_student(spec: StudentSpec, *, wait: bool) -> StudentBackend:
    """The version's runtime if loaded; else start loading it and either wait for it (`wait`)
    or raise StillLoading. A load that failed raises BackendUnavailable with its cause."""
    if not settings.VALENCE_LOAD_IN_BACKGROUND:
        return load_student(spec)
    backend = cached_student(spec.version_id)
    if backend is not None:
        return backend
    load = warm(spec)
    if load is not None:
        if wait:
            load.done.wait()
        if not load.done.is_set():
            raise StillLoading(f"v{spec.version_id} is loading in the background")
        if load.error is not None:
            raise BackendUnavailable(
                f"v{spec.version_id} could not be loaded: {load.error}"
            ) from load.error
    return load_student(spec)  # loaded by now: from the cache (unless evicted since)


def state(spec: StudentSpec) -> str:
    """ "ok", "loading" or "error: <why>", starting a load when the version has none."""
    if not settings.VALENCE_LOAD_IN_BACKGROUND:
        try:
            load_student(spec)
        except Exception as exc:  # BackendUnavailable, a corrupt artefact, a missing runtime
            return f"error: {str(exc)[:200]}"
        return "ok"
    load = warm(spec)
    if load is None:
        return "ok"
    error = load.error if load.done.is_set() else load.previous_error
    if error is not None:
        return f"error: {str(error)[:200]}"
    if not load.done.is_set():
        return "loading"
    return "ok" if cached_student(spec.version_id) is not None else "loading"


def warm_active() -> threading.Thread:
    """Start loading every active version, from a thread (it reads the registry): called when a
    web process starts, so that it is usually warm before its first request."""

    def start() -> None:
        from boundary.models import ModelVersion

        try:
            for version in ModelVersion.objects.active():
                warm(version.student_spec())
        except Exception:  # no database yet, or no tables: the first request will look again
            logger.warning("could not read the active versions to load them", exc_info=True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=start, name="valence-warm-active", daemon=True)
    thread.start()
    return thread


def forget() -> None:
    """Forget every load (tests; the students' cache is cleared separately)."""
    with _lock:
        _loads.clear()
