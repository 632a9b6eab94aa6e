"""The API's per-token rate limit, exact and shared by every web process and host.

DRF's `UserRateThrottle` keeps each token's history as a pickled list of timestamps in the
cache: a read and a write of up to `rate` floats per request (a file under DATA_DIR with SQLite,
three queries on PostgreSQL's cache table), and two processes that read the list at once both
let their request through, so the limit leaks under exactly the load it is for. This keeps the
same rule (at most `rate` requests in any window of one `period`, bursts included; a refused
request is not counted) with one timestamp per admitted request in a store where the check and
the write happen under one lock:

- Redis (REDIS_URL set; any number of hosts): a sorted set, checked and updated by one Lua
  script. Redis down: throttling fails open, logged like the cache (valence_site.cache).
- PostgreSQL without Redis (every host on that database): the UNLOGGED table
  `boundary_ratehit` under a per-token advisory lock, in one call of a server-side function;
  unlogged, so admitting a request costs no WAL flush (a crash forgets recent requests, never
  a stored call).
- SQLite (one host): the same table in a file of its own beside the database, with
  `synchronous=OFF`: its writes need no fsync and never wait for the lock of the database the
  calls are stored in.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from rest_framework.throttling import UserRateThrottle

from valence_site.cache import DEFAULT_OPTIONS, UNREACHABLE, outage

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.request import Request
    from rest_framework.views import APIView

TABLE = "boundary_ratehit"
# Hits of tokens that went quiet are removed by their own next request, or by this sweep.
SWEEP_EVERY = 1000


class RateStore(Protocol):
    def take(self, key: str, limit: int, period_s: float, now: float) -> float:
        """Admit one request if fewer than `limit` were admitted in the `period_s` before `now`:
        0.0 when admitted (and counted), else the seconds until one will be."""
        ...


class SharedRateThrottle(UserRateThrottle):
    """`UserRateThrottle`'s rate, scope and keys (one history per user), kept in a RateStore."""

    _wait: float = 0.0
    num_requests: int  # set by UserRateThrottle.__init__ from the rate ("600/minute")
    duration: int

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self._wait = rate_store().take(key, self.num_requests, float(self.duration), time.time())
        return self._wait <= 0.0

    def wait(self) -> float | None:
        return self._wait or None


class RedisRateStore:
    # KEYS[1]: the token's sorted set; ARGV: now, period, limit, a unique member.
    SCRIPT = """
    local now, period, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
    if redis.call('ZCARD', KEYS[1]) < limit then
        redis.call('ZADD', KEYS[1], now, ARGV[4])
        redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000))
        return '0'
    end
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return tostring(tonumber(oldest[2]) + period - now)
    """

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, **DEFAULT_OPTIONS)
        self.script = self.client.register_script(self.SCRIPT)

    def take(self, key: str, limit: int, period_s: float, now: float) -> float:
        if outage.skipping():
            return 0.0
        member = f"{now!r}:{os.urandom(6).hex()}"
        try:
            wait = self.script(keys=[f"valence:rate:{key}"], args=[now, period_s, limit, member])
        except UNREACHABLE as exc:
            outage.failed("rate limit", exc)
            return 0.0
        return float(wait)


class _Sweeper:
    """Every SWEEP_EVERY admissions in this process, drop every token's expired hits."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.admitted = 0

    def due(self) -> bool:
        with self.lock:
            self.admitted += 1
            return self.admitted % SWEEP_EVERY == 0


def _take(execute: Any, key: str, limit: int, period_s: float, now: float, sweep: bool) -> float:
    """The check and the write, for a caller that holds the token's lock; `execute(sql, args)`
    returns the first row. Every hit has the same period (one scope), so a sweep may drop
    every token's old hits at once."""
    since = now - period_s
    if sweep:
        execute(f"DELETE FROM {TABLE} WHERE at <= %s", [since])
    else:
        execute(f"DELETE FROM {TABLE} WHERE key = %s AND at <= %s", [key, since])
    count, oldest = execute(f"SELECT count(*), min(at) FROM {TABLE} WHERE key = %s", [key])
    if count < limit:
        execute(f"INSERT INTO {TABLE} (key, at) VALUES (%s, %s)", [key, now])
        return 0.0
    return max(float(oldest) + period_s - now, 1e-6)


class DatabaseRateStore:
    """The `boundary_ratehit` table of the configured database (migration boundary/0009):
    UNLOGGED on PostgreSQL, which is where it is used, through the function
    `boundary_take_rate` (migration boundary/0011: one round trip). Elsewhere (SQLite, in
    tests) the same statements go one by one in an IMMEDIATE transaction, which locks."""

    def __init__(self) -> None:
        self.sweeper = _Sweeper()

    def take(self, key: str, limit: int, period_s: float, now: float) -> float:
        sweep = self.sweeper.due()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT boundary_take_rate(%s, %s, %s, %s, %s)",
                    [key, limit, period_s, now, sweep],
                )
                return float(cursor.fetchone()[0])
        with transaction.atomic(), connection.cursor() as cursor:

            def execute(sql: str, arguments: list[Any]) -> Any:
                cursor.execute(sql, arguments)
                return cursor.fetchone() if cursor.description else None

            return _take(execute, key, limit, period_s, now, sweep)


class SqliteFileRateStore:
    """One SQLite file for the limits of every process on this host; a connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.local = threading.local()
        self.sweeper = _Sweeper()

    def _connection(self) -> sqlite3.Connection:
        database: sqlite3.Connection | None = getattr(self.local, "connection", None)
        if database is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            database = sqlite3.connect(self.path, timeout=20, isolation_level=None)
            database.execute("PRAGMA journal_mode=WAL")
            database.execute("PRAGMA synchronous=OFF")
            database.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT NOT NULL, at REAL)")
            database.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_key_at ON {TABLE} (key, at)")
            self.local.connection = database
        return database

    def take(self, key: str, limit: int, period_s: float, now: float) -> float:
        database = self._connection()

        def execute(sql: str, arguments: list[Any]) -> Any:
            return database.execute(sql.replace("%s", "?"), arguments).fetchone()

        database.execute("BEGIN IMMEDIATE")  # the file's write lock: one process at a time
        try:
            wait = _take(execute, key, limit, period_s, now, self.sweeper.due())
        except BaseException:
            database.execute("ROLLBACK")
            raise
        database.execute("COMMIT")
        return wait


_store_lock = threading.Lock()
_stores: dict[tuple[str, str], Any] = {}


def rate_store() -> RateStore:
    """The store this configuration shares its limits through (one per process and setting)."""
    if settings.REDIS_URL:
        wanted = ("redis", settings.REDIS_URL)
    elif connection.vendor == "postgresql":
        wanted = ("database", "")
    else:
        wanted = ("sqlite", str(settings.VALENCE_RATE_LIMIT_FILE))
    with _store_lock:
        store = _stores.get(wanted)
        if store is None:
            kind, where = wanted
            store = (
                RedisRateStore(where)
                if kind == "redis"
                else DatabaseRateStore()
                if kind == "database"
                else SqliteFileRateStore(Path(where))
            )
            _stores[wanted] = store
    return store


def forget_stores() -> None:
    """Tests: the next request picks its store (and file) from the settings again."""
    with _store_lock:
        _stores.clear()
