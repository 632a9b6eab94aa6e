"""Local models ("students"): the backend protocol, loader registry and per-process cache.

A backend is plain Python with no ORM access, so it can be benchmarked alone. The cascade asks
`load_student(spec)` for the version it wants; the cache is keyed by version id, so a promotion
(a new active id) is picked up on the next request without restarting the web process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from boundary.triples import Triple


@dataclass(frozen=True)
class StudentAnswer:
    output: list[Triple] | str
    confidence: float  # in [0, 1]; compared against the version's calibrated threshold
    # Models that can tell which triples they are sure of (the encoder) also give one
    # confidence per output triple, and `complete`: how sure they are that none is missing.
    # The cascade then keeps the sure triples and asks the next stage only for the rest.
    triple_confidences: tuple[float, ...] | None = None
    complete: float | None = None


class StudentBackend(Protocol):
    def decompose(self, text: str) -> StudentAnswer: ...

    def recompose(self, triples: Sequence[Triple]) -> StudentAnswer: ...


@dataclass(frozen=True)
class StudentSpec:
    """What a loader needs to build a backend: the registry row, without the ORM."""

    version_id: int
    direction: str
    kind: str
    backend: str
    base_model: str
    artifact_path: str


class BackendUnavailable(RuntimeError):
    """No loader is installed for a version's backend, or its artifact cannot be loaded."""


Loader = Callable[[StudentSpec], StudentBackend]

_loaders: dict[str, Loader] = {}
_cache: OrderedDict[int, StudentBackend] = OrderedDict()
_lock = threading.Lock()
CACHE_SIZE = 4


def register_backend(name: str, loader: Loader) -> None:
    """Make a backend (e.g. "onnx") loadable: boundary.loaders at start-up, tests for fakes."""
    _loaders[name] = loader


def unregister_backend(name: str) -> None:
    _loaders.pop(name, None)


def cached_student(version_id: int) -> StudentBackend | None:
    """The version's runtime if this process has it loaded; never loads."""
    with _lock:
        backend = _cache.get(version_id)
        if backend is not None:
            _cache.move_to_end(version_id)
        return backend


def load_student(spec: StudentSpec) -> StudentBackend:
    with _lock:
        cached = _cache.get(spec.version_id)
        if cached is not None:
            _cache.move_to_end(spec.version_id)
            return cached
    loader = _loaders.get(spec.backend)
    if loader is None:
        raise BackendUnavailable(f"no loader is installed for backend {spec.backend!r}")
    # Loading can take seconds; do it outside the lock so other versions keep serving.
    backend = loader(spec)
    with _lock:
        _cache[spec.version_id] = backend
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return backend


def clear_cache() -> None:
    with _lock:
        _cache.clear()
