"""The flywheel, replayed: a stream of traffic through the real service, trainings on the way.

`simulate-flywheel` starts what production runs: gunicorn on loopback over a scratch database,
the django-q2 cluster (whose every-minute schedule is the product's own retraining trigger,
followed by training, the gate and promotion), and a teacher stand-in speaking the Messages API
that the real SDK reaches through its base URL, answering from the stream file's references.
Then it replays the stream through the API in windows of calls and reports, per window: the
share answered locally, the agreement of the *served* answers with the reference, LLM spend per
1,000 calls against the all-LLM baseline, and latency.

Pacing: traffic in production arrives over days, so trainings finish between bursts of calls.
Replayed at full speed, a whole stream would pass before the first training ended. By default
the replay therefore pauses after a window while a training is due or in flight (the run's
wall time then includes training time, and its figures do not depend on machine speed);
`wait_for_training=False` replays at full speed instead.

Nothing here touches the user's data: the scratch server has its own database, data and model
folders, and the teacher key is the stand-in's.
"""

from __future__ import annotations

import csv
import http.client
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from boundary.directions import DECOMPOSITION, RECOMPOSITION
from boundary.fingerprint import triple_set_key
from boundary.stats import percentile
from boundary.triples import Triple, normalise_triple, parse_triples
from training.api_bench import ScratchServer
from training.charts import Line, Panel, panels_svg
from training.datasets import read_jsonl
from training.teacher_standin import TeacherStandIn, references_from_records, texts_from_records

logger = logging.getLogger(__name__)

DIRECTIONS = (DECOMPOSITION, RECOMPOSITION)
IN_FLIGHT = frozenset({"queued", "training", "evaluating"})
LOCAL = frozenset({"student"})  # served by a local model alone, passing its threshold
ROUTES = {DECOMPOSITION: "/api/v1/decompose", RECOMPOSITION: "/api/v1/recompose"}


@dataclass(frozen=True)
class FlywheelConfig:
    stream: Path
    out_dir: Path
    evaluation: Path | None = None  # measured after the stream (e.g. dev.jsonl)
    category: str | None = None  # only records of this category, in both files
    directions: tuple[str, ...] = DIRECTIONS
    seed: int = 0
    limit: int | None = None  # records of the stream (after the category filter)
    window: int = 250  # calls per reported window
    concurrency: int = 8  # clients replaying at once
    teacher_latency_ms: tuple[float, float] = (800.0, 800.0)
    teacher_error_rate: float = 0.0
    train_every: int = 1500  # new teacher answers before a generative student (re)trains
    encoder_train_every: int = 1500  # the same for the decomposition encoder
    recalibrate_every: int = 200  # new teacher answers before a refused candidate is re-judged
    auto_train: tuple[str, ...] = ("decomposition:encoder", "recomposition:generative")
    wait_for_training: bool = True
    training_timeout_s: float = 3600.0  # the longest a single pause may last
    trigger_timeout_s: float = 180.0  # how long a due training may take to be queued
    database_url: str = ""  # an empty PostgreSQL database; else SQLite in a scratch folder
    environment: dict[str, str] = field(default_factory=dict)  # more settings for the service

    def description(self) -> dict[str, Any]:
        described = asdict(self)
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in described.items()
        }


@dataclass(frozen=True)
class Request:
    direction: str
    body: dict[str, Any]
    triples: tuple[Triple, ...]  # the reference triple set
    texts: tuple[str, ...]  # the reference texts of that set (in the stream's file)


@dataclass
class Outcome:
    request: Request
    status: int
    served_by: str = ""
    latency_ms: float = 0.0
    call_id: int | None = None
    output: Any = None
    exact: bool | None = None  # decomposition: the triple set, normalised
    precision: float | None = None  # decomposition: served triples that are in the reference
    recall: float | None = None
    chrf: float | None = None  # recomposition: chrF++ (0-100) against the reference texts
    round_trip: bool | None = None  # recomposition: filled in after the run

    @property
    def local(self) -> bool:
        return self.served_by in LOCAL


# --- the stream -------------------------------------------------------------------------------


def load_requests(
    path: Path,
    *,
    directions: Sequence[str],
    category: str | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> tuple[list[Request], list[dict[str, Any]]]:
    """Requests in seeded order (for each record, one call per direction), and the records."""
    records = [
        record
        for _, record in read_jsonl(path)
        if category is None or record.get("category") == category
    ]
    random.Random(seed).shuffle(records)
    if limit is not None:
        records = records[:limit]
    texts: dict[str, list[str]] = {}
    parsed = []
    for record in records:
        triples = tuple(parse_triples(record["triples"]))
        texts.setdefault(triple_set_key(triples), []).append(record["text"])
        parsed.append((record, triples))
    requests = []
    for record, triples in parsed:
        references = tuple(texts[triple_set_key(triples)])
        for direction in directions:
            body = (
                {"text": record["text"]}
                if direction == DECOMPOSITION
                else {"triples": [t.as_dict() for t in triples]}
            )
            requests.append(Request(direction, body, triples, references))
    return requests, records


def entries(requests: Iterable[Request]) -> list[Request]:
    """One request per triple set and direction: an evaluation counts each entry once."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for request in requests:
        key = (
            request.direction,
            request.body.get("text") or triple_set_key(request.triples),
        )
        if key not in seen:
            seen.add(key)
            kept.append(request)
    return kept


# --- scoring one answer -----------------------------------------------------------------------


def score(outcome: Outcome) -> Outcome:
    """Agreement of a served answer with the reference (in place; returns it)."""
    if outcome.status != 200 or outcome.output is None:
        return outcome
    request = outcome.request
    if request.direction == DECOMPOSITION:
        served = {normalise_triple(Triple(**t)) for t in outcome.output}
        expected = {normalise_triple(t) for t in request.triples}
        hits = len(served & expected)
        outcome.exact = served == expected
        outcome.precision = hits / len(served) if served else float(not expected)
        outcome.recall = hits / len(expected) if expected else 1.0
    else:
        import sacrebleu

        references = list(request.texts)
        outcome.chrf = sacrebleu.sentence_chrf(str(outcome.output), references, word_order=2).score
    return outcome


# --- the windows --------------------------------------------------------------------------------


def summarise(outcomes: Sequence[Outcome], costs: dict[int, tuple[float, float]]) -> dict[str, Any]:
    """One window's figures; `costs` maps a call id to (spent, all-LLM baseline) in USD."""
    answered = [o for o in outcomes if o.status == 200]
    row: dict[str, Any] = {"calls": len(outcomes), "errors": len(outcomes) - len(answered)}
    for direction in DIRECTIONS:
        mine = [o for o in answered if o.request.direction == direction]
        if not mine:
            continue
        local = [o for o in mine if o.local]
        degraded = [o for o in mine if o.served_by == "degraded"]
        remembered = [o for o in mine if o.served_by == "memory"]
        prefix = "dec" if direction == DECOMPOSITION else "rec"
        row[f"{prefix}_calls"] = len(mine)
        row[f"{prefix}_local_share"] = len(local) / len(mine)
        row[f"{prefix}_degraded_share"] = len(degraded) / len(mine)
        # An earlier answer to the same input (boundary.memory): no LLM call, but no model's.
        row[f"{prefix}_memory_share"] = len(remembered) / len(mine)
        if direction == DECOMPOSITION:
            row["dec_served_exact"] = _mean([o.exact for o in mine])
            row["dec_local_exact"] = _mean([o.exact for o in local])
            row["dec_served_triple_precision"] = _mean([o.precision for o in mine])
            row["dec_served_triple_recall"] = _mean([o.recall for o in mine])
        else:
            row["rec_served_chrf"] = _mean([o.chrf for o in mine])
            row["rec_local_chrf"] = _mean([o.chrf for o in local])
            row["rec_local_round_trip"] = _mean([o.round_trip for o in local])
        latencies = [o.latency_ms for o in mine]
        row[f"{prefix}_p50_ms"] = percentile(latencies, 50, 0.0)
        row[f"{prefix}_p95_ms"] = percentile(latencies, 95, 0.0)
    spent = [costs[o.call_id] for o in answered if o.call_id in costs]
    if spent:
        row["spend_per_1k_usd"] = 1000 * sum(s for s, _ in spent) / len(spent)
        row["baseline_per_1k_usd"] = 1000 * sum(b for _, b in spent) / len(spent)
    return row


def _window_row(
    number: int, start: int, outcomes: Sequence[Outcome], costs: dict[int, tuple[float, float]]
) -> dict[str, Any]:
    return {"window": number, "first_call": start + 1, **summarise(outcomes, costs)}


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


# --- the run ------------------------------------------------------------------------------------


class Flywheel:
    """One replay: start everything, stream, pause for trainings, measure, report."""

    def __init__(self, config: FlywheelConfig, *, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.outcomes: list[Outcome] = []
        self.evaluation_outcomes: list[Outcome] = []
        self.windows: list[dict[str, Any]] = []  # as printed during the replay (no bill yet)
        self.pauses: list[dict[str, Any]] = []
        self.not_recalibrated: dict[int, int] = {}  # version → new answers when given up
        self.looked_at: dict[int, int] = {}  # version → new answers at its last look seen
        self.round_trip_decomposer = ""

    def run(self) -> dict[str, Any]:
        config = self.config
        started = time.perf_counter()
        stream, records = load_requests(
            config.stream,
            directions=config.directions,
            category=config.category,
            seed=config.seed,
            limit=config.limit,
        )
        if not stream:
            raise ValueError(f"{config.stream}: no records to replay")
        evaluation: list[Request] = []
        if config.evaluation is not None:
            every, more = load_requests(
                config.evaluation, directions=config.directions, category=config.category
            )
            evaluation = entries(every)
            records = records + more
        teacher = TeacherStandIn(
            references=references_from_records(records),
            texts=texts_from_records(records),
            latency_ms=config.teacher_latency_ms,
            error_rate=config.teacher_error_rate,
            seed=config.seed,
        )
        config.out_dir.mkdir(parents=True, exist_ok=True)
        with teacher:
            server = ScratchServer(
                workers=2,
                threads=max(4, config.concurrency),
                encoder_threads=1,
                database_url=config.database_url,
                teacher=teacher,
                environment=self._environment(),
                folder=config.out_dir / "service",
            )
            try:
                server.prepare([])
                server.start()
                server.start_worker()
                self.say(f"serving on 127.0.0.1:{server.port}; teacher at {teacher.base_url}")
                self._replay(server, stream)
                self._evaluate(server, evaluation)
                self._round_trips(server)
                facts = self._service_facts(server)
            finally:
                server.close()
            report = self._report(facts, teacher.stats(), time.perf_counter() - started)
        self._write(report)
        return report

    def _environment(self) -> dict[str, str]:
        config = self.config
        return {
            **self._base_models(),
            # One epoch per LoRA training (the product's default is 2): on 2 CPU cores a step of
            # SmolLM2-135M takes about 3 s, and the whole stream must fit in an hour.
            "VALENCE_TRAIN_EPOCHS": "1",
            "VALENCE_TRAIN_EVERY": str(config.train_every),
            "VALENCE_ENCODER_TRAIN_EVERY": str(config.encoder_train_every),
            "VALENCE_RECALIBRATE_EVERY": str(config.recalibrate_every),
            "VALENCE_AUTO_TRAIN": ",".join(config.auto_train),
            # Its own model folder, kept with its database in --out/service.
            "VALENCE_MODEL_DIR": str(config.out_dir / "service" / "models"),
            **config.environment,
        }

    def _base_models(self) -> dict[str, str]:
        """This installation's base models as local folders (fetched once into its model
        folder), so the scratch service, whose model folder starts empty, fetches nothing."""
        from django.conf import settings

        from training.base_models import resolve_base_model

        wanted = {
            "VALENCE_BASE_MODEL_DECOMPOSITION": settings.VALENCE_BASE_MODELS[DECOMPOSITION],
            "VALENCE_BASE_MODEL_RECOMPOSITION": settings.VALENCE_BASE_MODELS[RECOMPOSITION],
            "VALENCE_ENCODER_BASE_MODEL": settings.VALENCE_ENCODER_BASE_MODEL,
        }
        return {
            name: resolve_base_model(value, settings.VALENCE_MODEL_DIR)
            for name, value in wanted.items()
            if name not in self.config.environment
        }

    # --- streaming ---------------------------------------------------------------------------

    def _replay(self, server: ScratchServer, stream: Sequence[Request]) -> None:
        window = self.config.window
        for start in range(0, len(stream), window):
            batch = stream[start : start + window]
            outcomes = self._send(server, batch)
            self.outcomes.extend(outcomes)
            row = _window_row(len(self.windows) + 1, start, outcomes, {})
            self.windows.append(row)
            self.say(_window_line(row))
            if self.config.wait_for_training:
                self._pause(server)

    def _send(self, server: ScratchServer, requests: Sequence[Request]) -> list[Outcome]:
        """Send in order with `concurrency` clients; outcomes come back in request order."""
        jobs: queue.Queue[int] = queue.Queue()
        for index in range(len(requests)):
            jobs.put(index)
        results: list[Outcome | None] = [None] * len(requests)

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            try:
                while True:
                    try:
                        index = jobs.get_nowait()
                    except queue.Empty:
                        return
                    results[index], connection = _call(server, connection, requests[index])
            finally:
                connection.close()

        threads = [threading.Thread(target=client) for _ in range(self.config.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [score(outcome) for outcome in results if outcome is not None]

    def _pause(self, server: ScratchServer) -> None:
        """Wait while a training or recalibration is due or in flight (bounded by timeouts)."""
        began = time.perf_counter()
        due_since: float | None = None
        while True:
            versions = _versions(server)
            for version in versions:
                if version.get("recalibrating"):
                    self.looked_at[version["id"]] = self._new_answers(version)
            in_flight = [v for v in versions if v["status"] in IN_FLIGHT or v.get("recalibrating")]
            due = self._due(versions) + self._recalibrations_due(versions)
            if not in_flight and not due:
                break
            now = time.perf_counter()
            if in_flight:
                due_since = None
            elif due_since is None:
                due_since = now
            elif now - due_since > self._queue_timeout(due):
                self._give_up(due, versions)
                break
            if now - began > self.config.training_timeout_s:
                self.say("  a training outlasted the timeout; going on")
                break
            time.sleep(2.0)
        waited = time.perf_counter() - began
        if waited > 2.5:
            versions = [
                {
                    key: v.get(key)
                    for key in ("id", "direction", "kind", "status", "is_active", "is_calibrated")
                }
                for v in _versions(server)
            ]
            self.pauses.append(
                {
                    "after_window": len(self.windows),
                    "seconds": round(waited, 1),
                    "versions": versions,
                }
            )
            self.say(f"  paused {waited:.0f} s for the worker; {_version_line(versions)}")

    def _due(self, versions: Sequence[dict[str, Any]]) -> list[str]:
        """Students with enough new teacher answers since their last training's watermark."""
        due = []
        for choice in self.config.auto_train:
            direction, kind = choice.split(":")
            if direction not in self.config.directions:
                continue
            every = (
                self.config.encoder_train_every if kind == "encoder" else self.config.train_every
            )
            mark = max(
                (
                    v["data_watermark"] or 0
                    for v in versions
                    if v["direction"] == direction and v["kind"] == kind
                ),
                default=0,
            )
            new = sum(
                1
                for o in self.outcomes
                if o.request.direction == direction
                and o.served_by == "teacher"
                and (o.call_id or 0) > mark
            )
            if new >= every:
                due.append(choice)
        return due

    def _queue_timeout(self, due: Sequence[str]) -> float:
        """A due training is always queued within a tick or two; a recalibration only when the
        gate refused its candidate for calibration alone, which this side cannot see."""
        if any(not item.startswith("recalibrate") for item in due):
            return self.config.trigger_timeout_s
        return min(self.config.trigger_timeout_s, 90.0)

    def _give_up(self, due: Sequence[str], versions: Sequence[dict[str, Any]]) -> None:
        trainings = [item for item in due if not item.startswith("recalibrate")]
        if trainings:
            self.say(f"  the trigger did not queue {trainings} within the timeout; going on")
        for version in versions:  # not waited for again until `recalibrate_every` more answers
            if f"recalibrate v{version['id']}" in due:
                self.not_recalibrated[version["id"]] = self._new_answers(version)

    def _new_answers(self, version: dict[str, Any]) -> int:
        """Teacher answers of its direction stored after its data watermark whose text and
        triple set came before it in none of the calls (the server's evidence rule, which
        looks only at the train split, counts a few more)."""
        mark = version.get("data_watermark") or 0
        mine = [o for o in self.outcomes if o.request.direction == version["direction"]]
        seen = {key for o in mine if (o.call_id or 0) <= mark for key in _content_keys(o)}
        return sum(
            1
            for o in mine
            if o.served_by == "teacher"
            and (o.call_id or 0) > mark
            and not seen.intersection(_content_keys(o))
        )

    def _recalibrations_due(self, versions: Sequence[dict[str, Any]]) -> list[str]:
        """Refused, uncalibrated candidates with `recalibrate_every` new teacher answers since
        they were last judged (the server's own rule, training.recalibration, estimated)."""
        every = self.config.recalibrate_every
        if every <= 0:
            return []
        due = []
        for choice in self.config.auto_train:
            direction, kind = choice.split(":")
            mine = [
                v
                for v in versions
                if v["direction"] == direction and v["kind"] == kind and v["status"] != "failed"
            ]
            newest = max(mine, key=lambda v: v["id"], default=None)
            if newest is None or newest["status"] != "ready" or newest["is_active"]:
                continue
            calibration = (newest.get("metrics") or {}).get("calibration") or {}
            if newest["is_calibrated"] and (calibration.get("held_out") or {}).get("answered"):
                continue  # proven held out: refused for something more evidence cannot change
            judged_on = calibration.get("chosen_on") or newest.get("eval_count") or 0
            new = self._new_answers(newest)
            evidence = new + (newest.get("eval_count") or 0)
            # After a look, the server counts the new labels since it (training.recalibration).
            looked = self.looked_at.get(newest["id"])
            enough = new >= looked + every if looked is not None else evidence >= judged_on + every
            given_up = self.not_recalibrated.get(newest["id"])
            if enough and (given_up is None or new >= given_up + every):
                due.append(f"recalibrate v{newest['id']}")
        return due

    # --- after the stream --------------------------------------------------------------------

    def _evaluate(self, server: ScratchServer, evaluation: Sequence[Request]) -> None:
        if evaluation:
            if self.config.wait_for_training:
                self._pause(server)  # what the stream's last labels set off
                self._await_models(server)
            self.say(f"evaluating on {len(evaluation)} held-out entries")
            self.evaluation_outcomes = self._send(server, evaluation)

    def _await_models(self, server: ScratchServer, timeout_s: float = 120.0) -> None:
        """Until every web process has loaded the active versions (boundary.warming loads them
        in the background), so the held-out figure measures the models, not their loading.
        Each probe reaches one process; several answers in a row without a loading model stand
        for all of them."""
        deadline, in_a_row = time.monotonic() + timeout_s, 0
        while in_a_row < 8 and time.monotonic() < deadline:
            _, body = server.request("GET", "/readyz")
            loading = isinstance(body, dict) and "loading" in body.values()
            in_a_row = 0 if loading else in_a_row + 1
            time.sleep(0.25)
        if in_a_row < 8:
            self.say(f"  models still loading after {timeout_s:.0f} s; evaluating anyway")

    def _round_trips(self, server: ScratchServer) -> None:
        """Decompose every locally served recomposition again with the final local decomposer
        (inside the scratch service, as its own evaluation does)."""
        local = [
            o
            for o in [*self.outcomes, *self.evaluation_outcomes]
            if o.request.direction == RECOMPOSITION and o.local and isinstance(o.output, str)
        ]
        if not local:
            return
        payload = server.folder / "round_trip_in.json"
        payload.write_text(
            json.dumps(
                [
                    {"text": o.output, "triples": [t.as_dict() for t in o.request.triples]}
                    for o in local
                ]
            )
        )
        script = f"from training.flywheel import round_trip_file; round_trip_file({str(payload)!r})"
        server.manage("shell", "--command", script)
        answer = json.loads(payload.with_suffix(".out.json").read_text())
        self.round_trip_decomposer = answer["decomposer"]
        for outcome, agrees in zip(local, answer["agrees"], strict=True):
            outcome.round_trip = agrees

    def _service_facts(self, server: ScratchServer) -> dict[str, Any]:
        out = server.folder / "facts.json"
        script = (
            f"from training.flywheel import dump_service_facts; dump_service_facts({str(out)!r})"
        )
        server.manage("shell", "--command", script)
        facts: dict[str, Any] = json.loads(out.read_text())
        return facts

    def _report(
        self,
        facts: dict[str, Any],
        teacher: dict[str, int],
        seconds: float,
    ) -> dict[str, Any]:
        costs = {int(k): (v[0], v[1]) for k, v in facts["costs"].items()}
        window = self.config.window
        windows = [
            _window_row(number, start, self.outcomes[start : start + window], costs)
            for number, start in enumerate(range(0, len(self.outcomes), window), start=1)
        ]
        whole = summarise(self.outcomes, costs)
        replayed = {o.call_id for o in [*self.outcomes, *self.evaluation_outcomes]}
        # The live audit's own questions to the teacher, for instance.
        other_spend = sum(spent for pk, (spent, _) in costs.items() if pk not in replayed)
        report: dict[str, Any] = {
            "configuration": self.config.description(),
            "teacher": {
                "kind": "stand-in (answers from the stream file's references)",
                "latency_ms": list(self.config.teacher_latency_ms),
                "error_rate": self.config.teacher_error_rate,
                **teacher,
            },
            "seconds": round(seconds, 1),
            "windows": windows,
            "stream": whole,
            "stream_spend_share": (
                whole["spend_per_1k_usd"] / whole["baseline_per_1k_usd"]
                if whole.get("baseline_per_1k_usd")
                else None
            ),
            "other_teacher_spend_usd": other_spend,
            "pauses": self.pauses,
            "versions": facts["versions"],
            "round_trip_decomposer": self.round_trip_decomposer,
        }
        last = self.outcomes[-1000:]
        decompositions = [
            o.latency_ms for o in last if o.request.direction == DECOMPOSITION and o.status == 200
        ]
        report["last_1000_decomposition_p50_ms"] = percentile(decompositions, 50, 0.0)
        if self.evaluation_outcomes:
            report["evaluation"] = summarise(self.evaluation_outcomes, costs)
            report["evaluation"]["entries"] = len(self.evaluation_outcomes)
        return report

    def _write(self, report: dict[str, Any]) -> None:
        out = self.config.out_dir
        (out / "flywheel.json").write_text(json.dumps(report, indent=2, default=str))
        columns = sorted({key for row in report["windows"] for key in row}, key=_column_order)
        with (out / "flywheel.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(report["windows"])
        (out / "flywheel.svg").write_text(chart(report))


def _call(
    server: ScratchServer, connection: http.client.HTTPConnection, request: Request
) -> tuple[Outcome, http.client.HTTPConnection]:
    path = ROUTES[request.direction]
    started = time.perf_counter()
    try:
        status, body = server.request("POST", path, request.body, connection)
    except (OSError, http.client.HTTPException):
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        return Outcome(request, status=0, latency_ms=_ms(started)), connection
    outcome = Outcome(request, status=status, latency_ms=_ms(started))
    if status == 200 and isinstance(body, dict):
        outcome.served_by = str(body.get("served_by") or "")
        outcome.call_id = body.get("call_id")
        outcome.output = (
            body.get("triples") if request.direction == DECOMPOSITION else body.get("text")
        )
        if isinstance(outcome.output, list):
            outcome.output = [
                {key: t[key] for key in ("subject", "predicate", "object")} for t in outcome.output
            ]
    return outcome, connection


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _content_keys(outcome: Outcome) -> set[str]:
    keys = {"facts:" + triple_set_key(outcome.request.triples)}
    if outcome.request.direction == DECOMPOSITION:
        keys.add("text:" + " ".join(str(outcome.request.body.get("text", "")).lower().split()))
    return keys


def _versions(server: ScratchServer) -> list[dict[str, Any]]:
    status, body = server.request("GET", "/api/v1/models?page_size=200")
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"GET /api/v1/models answered {status}")
    results: list[dict[str, Any]] = body.get("results", [])
    return results


def _version_line(versions: Sequence[dict[str, Any]]) -> str:
    active = [f"v{v['id']} {v['direction'][:3]}/{v['kind']}" for v in versions if v["is_active"]]
    latest = max(versions, key=lambda v: v["id"]) if versions else None
    tail = f"; latest v{latest['id']} {latest['status']}" if latest else ""
    return ("active: " + (", ".join(active) or "none")) + tail


def _window_line(row: dict[str, Any]) -> str:
    parts = [f"window {row['window']:>3} ({row['calls']} calls)"]
    if "dec_local_share" in row:
        exact = row.get("dec_served_exact")
        parts.append(
            f"decompose local {row['dec_local_share']:.0%}, served exact "
            + (f"{exact:.0%}" if exact is not None else "-")
            + f", p50 {row['dec_p50_ms']:.0f} ms"
        )
    if "rec_local_share" in row:
        chrf = row.get("rec_served_chrf")
        parts.append(
            f"recompose local {row['rec_local_share']:.0%}, "
            f"remembered {row.get('rec_memory_share', 0):.0%}, chrF++ "
            + (f"{chrf:.1f}" if chrf is not None else "-")
        )
    return "; ".join(parts)


_ORDER = ("window", "first_call", "calls", "errors")


def _column_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def chart(report: dict[str, Any]) -> str:
    """Local share and agreement, spend against the baseline, latency: per window."""
    windows = report["windows"]
    x = [row["window"] for row in windows]

    def series(key: str) -> list[float | None]:
        return [row.get(key) for row in windows]

    panels = [
        Panel(
            "Answered locally, and agreement of served answers",
            "share",
            [
                Line("decompose: local", series("dec_local_share")),
                Line("recompose: local", series("rec_local_share")),
                Line("decompose: served exact", series("dec_served_exact"), dashed=True),
                Line("recompose: round trip", series("rec_local_round_trip"), dashed=True),
            ],
            y_min=0.0,
            y_max=1.0,
            percent=True,
        ),
        Panel(
            "LLM spend per 1,000 calls",
            "USD",
            [
                Line("spent", series("spend_per_1k_usd")),
                Line("all-LLM baseline", series("baseline_per_1k_usd"), dashed=True),
            ],
            y_min=0.0,
        ),
        Panel(
            "Latency seen by the client",
            "ms",
            [
                Line("decompose p50", series("dec_p50_ms")),
                Line("decompose p95", series("dec_p95_ms"), dashed=True),
                Line("recompose p50", series("rec_p50_ms")),
                Line("recompose p95", series("rec_p95_ms"), dashed=True),
            ],
            y_min=0.0,
        ),
    ]
    return panels_svg(x, panels, title="Valence Boundary flywheel", x_label="window of calls")


# --- run inside the scratch service (manage.py shell) ------------------------------------------


def round_trip_file(path: str) -> None:
    """[{text, triples}] -> {decomposer, agrees: [bool]} at <path>.out.json."""
    from training.evaluation import round_trip
    from training.pipeline import round_trip_decomposer

    items = json.loads(Path(path).read_text())
    decompose, name = round_trip_decomposer(RECOMPOSITION)
    agrees: list[bool | None] = []
    for item in items:
        if decompose is None:
            agrees.append(None)
            continue
        expected = parse_triples(item["triples"])
        try:
            agrees.append(round_trip(expected, decompose(item["text"])).agrees)
        except Exception:  # an unreadable text recovers no fact
            agrees.append(False)
    out = Path(path).with_suffix(".out.json")
    out.write_text(json.dumps({"decomposer": name, "agrees": agrees}))


def dump_service_facts(path: str) -> None:
    """What the replay cannot see over HTTP: each call's bill and the registry's history."""
    from boundary.models import BoundaryCall, ModelVersion

    costs: dict[int, tuple[float, float]] = {}
    for pk, served_by, cost, avoided in BoundaryCall.objects.values_list(
        "pk", "served_by", "cost_usd", "avoided_cost_usd"
    ):
        spent = float(cost or 0)
        baseline = spent if served_by == "teacher" else float(avoided or cost or 0)
        costs[pk] = (spent, baseline)
    versions = []
    for version in ModelVersion.objects.order_by("pk"):
        metrics = version.metrics or {}
        calibration = version.calibration
        versions.append(
            {
                "id": version.pk,
                "direction": version.direction,
                "kind": version.kind,
                "status": version.status,
                "is_active": version.is_active,
                "train_count": version.train_count,
                "eval_count": version.eval_count,
                "headline_metric": metrics.get("headline_metric"),
                "headline": metrics.get("headline"),
                "threshold": version.threshold,
                "expected_fallback_rate": version.expected_fallback_rate,
                "ece": calibration.get("ece"),
                "held_out": calibration.get("held_out"),
                "created_at": version.created_at.isoformat(),
                "promoted_at": version.promoted_at.isoformat() if version.promoted_at else None,
                "chosen_on": calibration.get("chosen_on"),
                "recalibrations": [
                    {
                        "evidence": r.evidence,
                        "status": r.status,
                        "calibrated": r.calibrated,
                        "promoted": r.promoted,
                        "outcome": r.outcome,
                    }
                    for r in version.recalibrations.order_by("pk")
                ],
            }
        )
    Path(path).write_text(json.dumps({"costs": costs, "versions": versions}))
