"""Two real faults and what the API does through them.

PostgreSQL restarted under traffic: a private server (initdb'd here, on a free loopback port,
never the machine's shared one) backs a real gunicorn (`ScratchServer`, persistent connections
with health checks, as in production); clients keep posting decompositions while it stops for
two seconds and comes back. The teacher is the loopback stand-in, so every served call is a
200 with a stored row.

Redis down: REDIS_URL points at a loopback port where nothing listens; the real redis client
gets its connection refused on every cache call.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache
from rest_framework.throttling import UserRateThrottle

from boundary.models import BoundaryCall
from tests.anthropic_mock import tool_message
from training.api_bench import ScratchServer
from training.teacher_standin import TeacherStandIn
from valence_site.cache import outage

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CLIENTS = 4
DOWN_S = 2.0  # how long the database stays stopped
SETTLE_S = 2.0  # traffic before the stop and after the start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_missing() -> str:
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).exists()]
    if missing:
        return f"PostgreSQL 15 binaries missing from {PG_BIN}: {', '.join(missing)}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing, and initdb refuses to run as root"
    return ""


needs_postgres = pytest.mark.skipif(bool(_postgres_missing()), reason=_postgres_missing())


# --- PostgreSQL restarted under traffic ----------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster in a temporary folder: its data, log and unix socket all live there."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="valence-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/valence"
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to `postgres`
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", "data", "--auth=trust", "--username=postgres", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "valence")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", "data", "-l", "postgres.log", "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", "data", "-m", mode, "-w", "stop")

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(PG_BIN / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, cwd=self.folder, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the request was sent
    status: int  # 0: no HTTP answer at all
    content_type: str
    body: dict | None
    retry_after: str | None

    @property
    def code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code")


def post_until(server: ScratchServer, stop: threading.Event, number: int) -> list[Answer]:
    """One client on one keep-alive connection, posting a new sentence every 50 ms."""
    headers = {"Authorization": f"Token {server.token}", "Content-Type": "application/json"}
    answers: list[Answer] = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    sent = 0
    while not stop.is_set():
        sent += 1
        text = f"Person {number}x{sent} prefers composable architectures."
        started = time.monotonic()
        try:
            connection.request("POST", "/api/v1/decompose", json.dumps({"text": text}), headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            answers.append(Answer(started, 0, "", None, None))
            continue
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        content_type = response.getheader("Content-Type", "")
        answers.append(
            Answer(started, response.status, content_type, body, response.getheader("Retry-After"))
        )
        time.sleep(0.05)
    connection.close()
    return answers


@dataclass(frozen=True)
class Restart:
    answers: list[Answer]
    stopped_at: float  # the database had finished stopping
    restarting_at: float  # it was asked to start again
    started_at: float  # it accepted connections again
    stored_ids: set[int]
    log: str

    @property
    def during_outage(self) -> list[Answer]:
        return [a for a in self.answers if self.stopped_at <= a.started < self.restarting_at]

    @property
    def after_restart(self) -> list[Answer]:
        return [a for a in self.answers if a.started >= self.started_at]


STORED_IDS = (
    "import json\nfrom boundary.models import BoundaryCall\n"
    "print(json.dumps(list(BoundaryCall.objects.values_list('pk', flat=True))))"
)


@pytest.fixture(scope="module")
def restart() -> Restart:
    postgres = PrivatePostgres()
    server: ScratchServer | None = None
    try:
        with TeacherStandIn(latency_ms=(5.0, 5.0), seed=0) as teacher:
            server = ScratchServer(
                workers=1,
                threads=CLIENTS,
                encoder_threads=1,
                database_url=postgres.url,
                teacher=teacher,
                # Production's connection handling, whatever this machine's environment says.
                environment={"VALENCE_DB_CONN_MAX_AGE": "60", "REDIS_URL": ""},
            )
            server.prepare([])  # no local model: the teacher answers every call
            server.start()
            stop = threading.Event()
            results: list[list[Answer]] = [[] for _ in range(CLIENTS)]

            def client(number: int) -> None:
                results[number] = post_until(server, stop, number)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(SETTLE_S)
                postgres.stop()
                stopped_at = time.monotonic()
                time.sleep(DOWN_S)
                restarting_at = time.monotonic()
                postgres.start()
                started_at = time.monotonic()
                time.sleep(SETTLE_S)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            stored = json.loads(server.manage("shell", "--command", STORED_IDS).splitlines()[-1])
            log = server.log.read_text(errors="replace")
    finally:
        if server is not None:
            server.close()
        postgres.close()
    answers = sorted((a for mine in results for a in mine), key=lambda a: a.started)
    return Restart(answers, stopped_at, restarting_at, started_at, set(stored), log)


@needs_postgres
def test_no_request_gets_a_500_or_goes_unanswered(restart):
    statuses = {a.status for a in restart.answers}
    assert statuses <= {200, 503}, statuses


@needs_postgres
def test_requests_while_the_database_is_down_get_a_json_503_database_unavailable(restart):
    down = restart.during_outage
    assert down, "no request was sent while the database was stopped"
    assert {(a.status, a.code) for a in down} == {(503, "database_unavailable")}
    assert {a.content_type for a in down} == {"application/json"}


@needs_postgres
def test_every_503_says_when_to_retry(restart):
    unavailable = [a for a in restart.answers if a.status == 503]
    assert unavailable
    assert {a.retry_after for a in unavailable} == {"5"}
    assert {a.body["error"]["retry_after_s"] for a in unavailable} == {5}


@needs_postgres
def test_the_same_server_answers_again_once_the_database_is_back(restart):
    after = restart.after_restart
    assert after, "no request was sent after the database came back"
    assert {a.status for a in after} == {200}


@needs_postgres
def test_every_acknowledged_call_is_stored(restart):
    acknowledged = {a.body["call_id"] for a in restart.answers if a.status == 200}
    assert acknowledged
    assert acknowledged <= restart.stored_ids


@needs_postgres
def test_the_outage_is_logged_as_warnings_not_errors(restart):
    assert "WARNING django.request Service Unavailable: /api/v1/decompose" in restart.log
    assert "OperationalError" in restart.log  # the cause is in the warning
    assert " ERROR " not in restart.log, restart.log[-3000:]


# --- Redis down ------------------------------------------------------------------------------

TRIPLES = [{"subject": "Chris", "predicate": "prefers", "object": "tea"}]


@pytest.fixture
def redis_down(settings):
    """The cache and the rate limit are Redis at a loopback port that refuses connections."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "valence_site.cache.TolerantRedisCache",
            "LOCATION": settings.REDIS_URL,
        }
    }
    outage.reset()
    yield
    outage.reset()


@pytest.fixture
def teacher_answers(teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TRIPLES}))


def decompose(api):
    return api.post("/api/v1/decompose", {"text": "Chris prefers tea."}, format="json")


@pytest.mark.django_db
def test_a_decomposition_is_served_and_stored_while_redis_is_down(api, teacher_answers, redis_down):
    response = decompose(api)
    assert response.status_code == 200, response.content
    assert BoundaryCall.objects.filter(pk=response.json()["call_id"]).exists()


@pytest.mark.django_db
def test_throttling_fails_open_while_redis_is_down(api, teacher_answers, redis_down, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "1/minute"})
    assert [decompose(api).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.django_db
def test_an_unreachable_redis_is_logged_once_at_warning(api, teacher_answers, redis_down, caplog):
    with caplog.at_level(logging.INFO):
        decompose(api)
        decompose(api)
    logged = [(r.name, r.levelno) for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == [("valence_site.cache", logging.WARNING)]


def test_reads_miss_and_writes_are_dropped_while_redis_is_down(redis_down):
    cache.set("history", [1.0])
    assert cache.get("history", "missing") == "missing"
    assert cache.add("lock", 1) is False
    assert cache.get_many(["history", "lock"]) == {}


def test_an_increment_while_redis_is_down_is_a_missing_key(redis_down):
    with pytest.raises(ValueError, match="not found"):
        cache.incr("counter")
