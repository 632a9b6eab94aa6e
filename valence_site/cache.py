"""Django's Redis cache, made to survive Redis being down: a miss or a no-op, never an error.

The cache holds only the API's throttle history, which can be lost without harm, so while Redis
cannot be reached every read is a miss and every write is dropped: throttling fails open. The
outage is logged at WARNING at most once a minute per process (a dead Redis must not flood the
logs), and after a failure Redis is left alone for a few seconds: a host that does not answer at
all then costs one connect timeout every few seconds, not one per cache call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# A healthy Redis answers in a millisecond; these bound what an unreachable one costs a request.
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}
SKIP_AFTER_FAILURE_S = 5.0
LOG_EVERY_S = 60.0

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
_T = TypeVar("_T")


class _Outage:
    """When Redis last failed, for every thread of the process (Django's caches are per thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._logged_at: float | None = None

    def skipping(self) -> bool:
        return time.monotonic() < self._skip_until

    def failed(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._skip_until = now + SKIP_AFTER_FAILURE_S
            log = self._logged_at is None or now - self._logged_at >= LOG_EVERY_S
            if log:
                self._logged_at = now
        if log:
            logger.warning(
                "Redis cache unreachable (%s: %s: %s); serving without it, throttling is off "
                "until it answers (logged at most every %d s)",
                operation,
                type(exc).__name__,
                exc,
                LOG_EVERY_S,
            )

    def reset(self) -> None:
        with self._lock:
            self._skip_until, self._logged_at = 0.0, None


outage = _Outage()


class TolerantRedisCacheClient(RedisCacheClient):
    """Each operation answers what a cache that has forgotten everything would."""

    def _or(self, fallback: _T, call: Callable[..., _T], *arguments: Any) -> _T:
        if outage.skipping():
            return fallback
        try:
            return call(*arguments)
        except UNREACHABLE as exc:
            outage.failed(call.__name__, exc)
            return fallback

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._or(False, super().add, key, value, timeout)

    def get(self, key: Any, default: Any) -> Any:
        return self._or(default, super().get, key, default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._or(None, super().set, key, value, timeout)

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._or(False, super().touch, key, timeout)

    def delete(self, key: Any) -> bool:
        return self._or(False, super().delete, key)

    def get_many(self, keys: Any) -> dict[Any, Any]:
        return self._or({}, super().get_many, keys)

    def has_key(self, key: Any) -> bool:
        return self._or(False, super().has_key, key)

    def incr(self, key: Any, delta: int) -> Any:
        missing = object()
        value = self._or(missing, super().incr, key, delta)
        if value is missing:
            raise ValueError(f"Key '{key}' not found (the Redis cache is unreachable).")
        return value

    def set_many(self, data: Any, timeout: Any) -> None:
        self._or(None, super().set_many, data, timeout)

    def delete_many(self, keys: Any) -> None:
        self._or(None, super().delete_many, keys)

    def clear(self) -> bool:
        return self._or(False, super().clear)


class TolerantRedisCache(RedisCache):
    """settings.CACHES' backend when REDIS_URL is set; OPTIONS may override the timeouts."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = TolerantRedisCacheClient
