"""The API rate limit (boundary.throttling): exact, atomic, shared by processes, one query."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from django.db import connection
from rest_framework.throttling import UserRateThrottle

from boundary.throttling import DatabaseRateStore, RedisRateStore, SqliteFileRateStore
from tests.factories import TokenFactory

PERIOD = 60.0
LIMIT = 3  # three requests a minute
NOW = 1_000_000.0


def take_many(store, times: list[float], key: str = "throttle_user_1") -> list[float]:
    return [store.take(key, LIMIT, PERIOD, now) for now in times]


def test_a_full_burst_is_allowed_and_the_next_waits_for_the_first_to_leave_the_window(tmp_path):
    store = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    waits = take_many(store, [NOW, NOW + 1, NOW + 2, NOW + 10])
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(PERIOD - 10)


def test_a_refused_request_is_not_counted(tmp_path):
    store = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    take_many(store, [NOW, NOW, NOW, NOW + 30, NOW + 59])  # the last two refused
    assert store.take("throttle_user_1", LIMIT, PERIOD, NOW + PERIOD) == 0.0


def test_no_more_than_the_rate_gets_through_in_any_window_of_one_period(tmp_path):
    store = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    times = [NOW + step * 2.5 for step in range(200)]  # one request every 2.5 s for 500 s
    allowed = [now for now, wait in zip(times, take_many(store, times), strict=True) if not wait]
    for start in allowed:
        assert sum(1 for now in allowed if start <= now < start + PERIOD) <= LIMIT
    assert len(allowed) == LIMIT * 9  # 3 at 0 s, 60 s, ... 480 s


def test_each_token_has_its_own_rate(tmp_path):
    store = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    take_many(store, [NOW] * 3, key="throttle_user_1")
    assert store.take("throttle_user_2", LIMIT, PERIOD, NOW) == 0.0


def test_two_processes_share_one_limit_through_the_file(tmp_path):
    first = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    second = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    take_many(first, [NOW] * 3)
    assert second.take("throttle_user_1", LIMIT, PERIOD, NOW) > 0


def test_concurrent_requests_never_exceed_the_rate(tmp_path):
    """The check and the update are one statement: threads racing cannot both slip through."""
    store = SqliteFileRateStore(tmp_path / "limits.sqlite3")
    allowed: list[bool] = []
    lock = threading.Lock()

    def client() -> None:
        mine = [store.take("throttle_user_1", 50, PERIOD, NOW) == 0.0 for _ in range(20)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 50


@pytest.mark.django_db
def test_the_database_store_keeps_the_limit_in_its_table():
    store = DatabaseRateStore()
    waits = take_many(store, [NOW, NOW + 1, NOW + 2, NOW + 10])
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(PERIOD - 10)


@pytest.mark.django_db
def test_the_database_table_is_unlogged_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("UNLOGGED is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'boundary_ratehit'")
        assert cursor.fetchone() == ("u",)


@pytest.fixture
def redis_url() -> str:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return url


def test_the_redis_store_allows_the_rate_and_says_how_long_to_wait(redis_url):
    store, key = RedisRateStore(redis_url), f"test-{uuid.uuid4().hex}"
    try:
        waits = take_many(store, [NOW, NOW + 1, NOW + 2, NOW + 10], key=key)
    finally:
        store.client.delete(f"valence:rate:{key}")
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(PERIOD - 10)


@pytest.mark.django_db
def test_the_api_answers_429_with_retry_after_past_the_rate(api, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/minute"})
    codes = [api.post("/api/v1/recompose", {}, format="json") for _ in range(3)]
    assert [response.status_code for response in codes] == [400, 400, 429]
    assert 55 <= int(codes[2]["Retry-After"]) <= 60  # when the first leaves the window


@pytest.mark.django_db
def test_a_checked_token_is_not_looked_up_again(django_assert_num_queries, client, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": None})  # its own queries
    token = TokenFactory()
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    client.get("/api/v1/models", **headers)
    with django_assert_num_queries(1):  # the versions; no token or user lookup
        assert client.get("/api/v1/models", **headers).status_code == 200


@pytest.mark.django_db
def test_a_deleted_token_is_refused_at_once(client):
    token = TokenFactory()
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get("/api/v1/models", **headers).status_code == 200
    token.delete()
    assert client.get("/api/v1/models", **headers).status_code == 401


@pytest.mark.django_db
def test_a_deactivated_user_is_refused_at_once(client):
    token = TokenFactory()
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get("/api/v1/models", **headers).status_code == 200
    token.user.is_active = False
    token.user.save()
    assert client.get("/api/v1/models", **headers).status_code == 401
