"""End-to-end API benchmark: real gunicorn, real HTTP on loopback, a scratch database.

The web server runs in its own processes (gunicorn workers), the load comes from this process's
threads over keep-alive connections, so the numbers include everything a client pays for:
HTTP parsing, token authentication, throttling, the cascade, the stored call and the JSON.

Nothing of the user's data is touched: the server gets a fresh SQLite database in a temporary
folder, holding only copies of the registry rows under test (pointing at the same artefacts)
and a benchmark token. No real LLM key is ever passed, so no request can leave the machine:
either there is no teacher (what the local models are unsure of comes back `degraded`), or the
server's SDK is pointed at a `TeacherStandIn` on loopback that answers like the Messages API.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import serializers

from boundary.models import ModelVersion
from boundary.stats import percentile
from training.teacher_standin import TeacherStandIn, is_loopback_url


@dataclass
class Latency:
    requests: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    stages: dict[str, dict[str, float]]  # "served_by/first triple's stage" → count, p50, p95
    errors: int
    served_by: dict[str, int] = field(default_factory=dict)  # answers (HTTP 200) by served_by
    # Each answer's own local stages (inference, as the stored call's timings say) and what the
    # client waited beyond them: the request's cost around the model, measured per request.
    model_in_request: dict[str, float] = field(default_factory=dict)  # p50_ms, p95_ms
    outside_model: dict[str, float] = field(default_factory=dict)  # p50_ms, p95_ms


@dataclass
class Throughput:
    seconds: float
    concurrency: int
    completed: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    status_codes: dict[int, int] = field(default_factory=dict)
    served_by: dict[str, int] = field(default_factory=dict)  # answers (HTTP 200) by served_by


class ScratchServer:
    """A scratch database plus gunicorn serving the given versions as the active ones.

    The scratch database (`database_url`, an empty PostgreSQL database, or else SQLite in a
    temporary folder) is only ever touched by subprocesses running with its settings
    (`valence migrate`, `loaddata`, `create-token`), never by this process's connections.

    With a `teacher` stand-in, the server's own teacher (the real SDK code path) calls it:
    its key and loopback base URL go in through `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL`.
    """

    def __init__(
        self,
        *,
        workers: int,
        threads: int,
        encoder_threads: int,
        database_url: str = "",
        teacher: TeacherStandIn | None = None,
        environment: dict[str, str] | None = None,
        folder: Path | None = None,
    ) -> None:
        teacher_url = teacher.base_url if teacher is not None else ""
        if teacher_url and not is_loopback_url(teacher_url):
            raise ValueError(f"the teacher stand-in must be on loopback, not {teacher_url}")
        # A given folder is kept (its database and models outlive the run); a temporary one not.
        self.keep = folder is not None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="valence-bench-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers, self.threads, self.encoder_threads = workers, threads, encoder_threads
        self.token = ""
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None  # the first cluster started
        self.clusters: list[subprocess.Popen[bytes]] = []
        self.log = self.folder / "gunicorn.log"
        self.versions: list[ModelVersion] = []
        self.environment = {
            **os.environ,
            "DATABASE_URL": database_url or f"sqlite:///{self.folder / 'bench.sqlite3'}",
            "VALENCE_DATA_DIR": str(self.folder),
            "VALENCE_MODEL_DIR": str(settings.VALENCE_MODEL_DIR),
            "VALENCE_DEBUG": "0",
            "VALENCE_HTTPS": "0",
            "VALENCE_SECRET_KEY": secrets.token_urlsafe(32),
            "VALENCE_ALLOWED_HOSTS": "127.0.0.1",
            "VALENCE_API_RATE": "1000000/second",
            "VALENCE_LOG_LEVEL": "WARNING",
            "VALENCE_ENCODER_THREADS": str(encoder_threads),
            "ANTHROPIC_API_KEY": teacher.api_key if teacher is not None else "",
        }
        for name in ("ANTHROPIC_API_KEY_FILE", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
            self.environment.pop(name, None)
        if teacher is not None:
            self.environment["ANTHROPIC_BASE_URL"] = teacher_url
            # A proxy from the environment must not carry loopback calls off the machine.
            loopback = "127.0.0.1,localhost,::1"
            for name in ("NO_PROXY", "no_proxy"):
                current = self.environment.get(name)
                self.environment[name] = f"{loopback},{current}" if current else loopback
        self.environment.update(environment or {})

    # --- database ---------------------------------------------------------------------------

    def prepare(self, versions: Sequence[ModelVersion]) -> None:
        self.versions = list(versions)
        self._manage("migrate", "--verbosity", "0")
        self.token = self._manage("create_token", "bench").strip().splitlines()[-1]

    def activate(self, versions: Sequence[ModelVersion], *, sure: bool = False) -> None:
        """Only `versions` serve (no LLM behind them): every answer is theirs. With `sure`, the
        scratch copies' threshold is 0, so every answer takes the sure local path (the hot path
        of a mature deployment) instead of the degraded one an unsure answer takes here."""
        wanted = {v.pk for v in versions}
        copies = []
        for version in self.versions:
            copy = ModelVersion.objects.get(pk=version.pk)
            copy.is_active = copy.pk in wanted
            copy.created_by = copy.promoted_by = None
            if sure:
                copy.threshold = 0.0
                metrics = copy.metrics or {}
                copy.metrics = {**metrics, "calibration": {**copy.calibration, "calibrated": True}}
            copies.append(copy)
        fixture = self.folder / "versions.json"
        fixture.write_text(serializers.serialize("json", copies))
        self._manage("loaddata", str(fixture), "--verbosity", "0")

    def stored_calls(self) -> int:
        script = "from boundary.models import BoundaryCall; print(BoundaryCall.objects.count())"
        return int(self._manage("shell", "--command", script).strip().splitlines()[-1])

    def stage_milliseconds(self, call_ids: Sequence[int]) -> dict[int, float]:
        """The local stages' time inside each stored call (its diagnostics' timings, summed)."""
        ids = self.folder / "call_ids.json"
        ids.write_text(json.dumps(list(call_ids)))
        script = (
            "import json; from boundary.models import BoundaryCall; "
            f"ids = json.load(open({str(ids)!r})); "
            "print(json.dumps({c.pk: sum(t['ms'] for t in (c.diagnostics or {}).get('timings', [])"
            " if t['stage'] != 'teacher') for c in BoundaryCall.objects.filter(pk__in=ids)}))"
        )
        output = self._manage("shell", "--command", script).strip().splitlines()[-1]
        return {int(pk): ms for pk, ms in json.loads(output).items()}

    def close(self) -> None:
        self.stop()
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def manage(self, *arguments: str) -> str:
        """A management command in the scratch environment; its stdout."""
        return self._manage(*arguments)

    def _manage(self, *arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *arguments],
            cwd=settings.BASE_DIR,
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(arguments)} failed: {result.stderr[-2000:]}")
        return result.stdout

    # --- server -----------------------------------------------------------------------------

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                "valence_site.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(self.threads),
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: nobody reads a pipe while the load runs, and a full pipe
            # would block the server on its next log line.
            stderr=self.log.open("ab"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn exited: {error}")
            try:
                status, _ = self.request("GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def start_worker(self, cluster: str = "") -> subprocess.Popen[bytes]:
        """A django-q2 cluster (its scheduler runs the product's every-minute trigger); with
        `cluster`, the alternative one of that name (`Q_CLUSTER_NAME`), e.g. the training queue."""
        environment = {**self.environment, **({"Q_CLUSTER_NAME": cluster} if cluster else {})}
        worker = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster"],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / f"worker{'-' + cluster if cluster else ''}.log").open("ab"),
            # Its own process group: the cluster's children can be stopped (or killed) with it.
            start_new_session=True,
        )
        self.clusters.append(worker)
        self.worker = self.worker or worker
        return worker

    def stop(self) -> None:
        for process in (self.process, *self.clusters):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.process = self.worker = None
        self.clusters = []

    def request(
        self, method: str, path: str, body: Any = None, connection: Any = None
    ) -> tuple[int, Any]:
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        try:
            connection.request(method, path, json.dumps(body) if body else None, headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            if own:
                connection.close()
        return response.status, json.loads(payload) if payload else None

    # --- measurements -----------------------------------------------------------------------

    def warm_up(self, sentences: Sequence[str]) -> None:
        """Every worker loads its models on first use; keep that out of the numbers.

        The connections run at once: behind a teacher each unsure sentence takes a second.
        """
        failures: list[Exception] = []

        def warm(connection: http.client.HTTPConnection) -> None:
            try:
                for sentence in sentences[:3]:
                    self.request("POST", "/api/v1/decompose", {"text": sentence}, connection)
            except Exception as exc:  # raised below, in the caller's thread
                failures.append(exc)

        with self._pool(self.workers * self.threads * 2) as pool:
            threads = [threading.Thread(target=warm, args=(c,)) for c in pool]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]

    def latency(self, sentences: Sequence[str], runs: int) -> Latency:
        """One request at a time over one keep-alive connection: the latency a client sees."""
        timings: list[float] = []
        by_stage: dict[str, list[float]] = {}
        served_by: Counter[str] = Counter()
        answered: dict[int, float] = {}  # call id → what the client waited
        errors = 0
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            for _ in range(runs):
                for sentence in sentences:
                    started = time.perf_counter()
                    status, body = self.request(
                        "POST", "/api/v1/decompose", {"text": sentence}, connection
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    timings.append(elapsed)
                    if status != 200:
                        errors += 1
                        continue
                    by_stage.setdefault(_stage(body), []).append(elapsed)
                    served_by[str(body.get("served_by"))] += 1
                    if isinstance(body.get("call_id"), int):
                        answered[body["call_id"]] = elapsed
        finally:
            connection.close()
        stages = self.stage_milliseconds(list(answered)) if answered else {}
        model = [stages[pk] for pk in answered if pk in stages]
        outside = [waited - stages[pk] for pk, waited in answered.items() if pk in stages]
        return Latency(
            requests=len(timings),
            p50_ms=percentile(timings, 50, 0.0),
            p95_ms=percentile(timings, 95, 0.0),
            mean_ms=statistics.fmean(timings),
            stages={
                stage: {
                    "count": len(values),
                    "p50_ms": percentile(values, 50, 0.0),
                    "p95_ms": percentile(values, 95, 0.0),
                }
                for stage, values in sorted(by_stage.items())
            },
            errors=errors,
            served_by=dict(served_by),
            model_in_request=_spread(model),
            outside_model=_spread(outside),
        )

    def transport(self, runs: int) -> dict[str, float]:
        """`GET /healthz` one at a time on one keep-alive connection: HTTP, gunicorn and Django's
        middleware with no token, no database and no model. What any request pays before the
        API does its own work, so "around the model" can be split into the two."""
        timings: list[float] = []
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for _ in range(runs):
                started = time.perf_counter()
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                timings.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise RuntimeError(f"/healthz answered {response.status}")
        finally:
            connection.close()
        return {
            "requests": len(timings),
            "p50_ms": percentile(timings, 50, 0.0),
            "p95_ms": percentile(timings, 95, 0.0),
        }

    def throughput(self, sentences: Sequence[str], seconds: float, concurrency: int) -> Throughput:
        """`concurrency` clients, each on its own keep-alive connection, for `seconds`."""
        stop_at = time.perf_counter() + seconds
        lock = threading.Lock()
        timings: list[float] = []
        codes: Counter[int] = Counter()
        served_by: Counter[str] = Counter()

        def client(number: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            mine: list[float] = []
            my_codes: Counter[int] = Counter()
            my_served_by: Counter[str] = Counter()
            index = number
            try:
                while time.perf_counter() < stop_at:
                    sentence = sentences[index % len(sentences)]
                    index += concurrency  # no two clients send one sentence before it wraps
                    started = time.perf_counter()
                    try:
                        status, body = self.request(
                            "POST", "/api/v1/decompose", {"text": sentence}, connection
                        )
                        if status == 200:
                            my_served_by[str(body.get("served_by"))] += 1
                    except OSError:
                        status = 0
                        connection.close()
                        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    mine.append((time.perf_counter() - started) * 1000)
                    my_codes[status] += 1
            finally:
                connection.close()
                with lock:
                    timings.extend(mine)
                    codes.update(my_codes)
                    served_by.update(my_served_by)

        started = time.perf_counter()
        workers = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        completed = codes.get(200, 0)
        return Throughput(
            seconds=elapsed,
            concurrency=concurrency,
            completed=completed,
            errors=sum(codes.values()) - completed,
            requests_per_s=completed / elapsed,
            p50_ms=percentile(timings, 50, 0.0),
            p95_ms=percentile(timings, 95, 0.0),
            status_codes=dict(codes),
            served_by=dict(served_by),
        )

    @contextmanager
    def _pool(self, size: int) -> Iterator[list[http.client.HTTPConnection]]:
        pool = [
            http.client.HTTPConnection("127.0.0.1", self.port, timeout=120) for _ in range(size)
        ]
        try:
            yield pool
        finally:
            for connection in pool:
                connection.close()


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50_ms": percentile(values, 50, 0.0), "p95_ms": percentile(values, 95, 0.0)}


def _stage(body: dict[str, Any]) -> str:
    triples = body.get("triples") or []
    stage = triples[0]["source"]["stage"] if triples and triples[0].get("source") else "none"
    return f"{body.get('served_by')}/{stage}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
