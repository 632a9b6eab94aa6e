"""Which versions serve a direction, cached per process for a moment.

Reading the registry costs a query (about a millisecond) on every request, a tenth of the
encoder's whole budget. Versions change rarely, so each process keeps the answer for
VALENCE_REGISTRY_CACHE_SECONDS (2 s): a promotion or rollback is picked up by every web process
within that time, and at once by the process that made it (a ModelVersion save clears it).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from boundary.models import ModelVersion

_lock = threading.Lock()
_cache: dict[str, tuple[float, list[ModelVersion]]] = {}


def serving_versions(direction: str) -> list[ModelVersion]:
    ttl = settings.VALENCE_REGISTRY_CACHE_SECONDS
    now = time.monotonic()
    with _lock:
        cached = _cache.get(direction)
    if ttl and cached is not None and cached[0] > now:
        return cached[1]
    versions = ModelVersion.objects.serving_order(direction)
    with _lock:
        _cache[direction] = (now + ttl, versions)
    return versions


def clear() -> None:
    with _lock:
        _cache.clear()


@receiver(post_save, sender=ModelVersion, dispatch_uid="boundary.serving.saved")
@receiver(post_delete, sender=ModelVersion, dispatch_uid="boundary.serving.deleted")
def _registry_changed(**kwargs: object) -> None:
    clear()
