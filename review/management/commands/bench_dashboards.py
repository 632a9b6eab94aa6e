from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from boundary.directions import DIRECTIONS
from valence_site.scratch_db import scratch_database

COLUMNS = (
    "direction, input, output, input_hash, group_key, split, served_by, model_version_id, "
    "confidence, fallback_reason, teacher_error, diagnostics, triple_sources, llm_model, "
    "latency_ms, cost_usd, avoided_cost_usd, review_status, review_priority, review_revision, "
    "created_at"
)
SERVED = [("student", 0.60), ("teacher", 0.30), ("degraded", 0.04), ("unserved", 0.01)]
SERVED.append(("imported", 0.05))


class Command(BaseCommand):
    help = (
        "Time every dashboard series on PostgreSQL with N generated calls. Creates a scratch "
        "database next to DATABASE_URL's (<name>_dashbench), fills it with COPY, measures in a "
        "child process pointed at it, and drops it afterwards (unless --keep)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calls", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=90, help="Spread the calls over N days.")
        parser.add_argument("--runs", type=int, default=3, help="Timed runs per query.")
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
        parser.add_argument("--measure-here", action="store_true", help="(internal: the child)")

    def handle(
        self, *args: Any, calls: int, days: int, runs: int, keep: bool, **options: Any
    ) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("this benchmark is for PostgreSQL: set DATABASE_URL=postgres://...")
        if options["measure_here"]:
            loaded = self._fill(calls, days)
            self.stdout.write(json.dumps({"load_seconds": loaded, **self._measure(runs)}))
            return
        with scratch_database("dashbench", keep=keep) as url:
            env = {**os.environ, "DATABASE_URL": url}
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            subprocess.run([*manage, "migrate", "--verbosity", "0"], env=env, check=True)
            started = time.perf_counter()
            child = subprocess.run(
                [
                    *manage,
                    "bench_dashboards",
                    "--measure-here",
                    f"--calls={calls}",
                    f"--days={days}",
                    f"--runs={runs}",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            report = json.loads(child.stdout.strip().splitlines()[-1])
            report["total_seconds"] = round(time.perf_counter() - started, 1)
        self._print(report, calls, days)

    def _print(self, report: dict[str, Any], calls: int, days: int) -> None:
        self.stdout.write(
            f"{calls:,} calls over {days} days loaded in {report['load_seconds']} s; "
            f"median of {report['runs']} runs (first run in brackets), milliseconds:"
        )
        ranges = list(next(iter(report["series"].values())))
        self.stdout.write(f"{'series':18}" + "".join(f"{r:>16}" for r in ranges))
        for name, by_range in report["series"].items():
            cells = "".join(
                "{:>16}".format(f"{t['median_ms']:.0f} ({t['first_ms']:.0f})")
                for t in by_range.values()
            )
            self.stdout.write(f"{name:18}{cells}")
        worst = max(t["median_ms"] for s in report["series"].values() for t in s.values())
        self.stdout.write(f"slowest chart: {worst:.0f} ms (goal: under 1000 ms)")

    def _fill(self, calls: int, days: int) -> float:
        from boundary.models import ModelVersion

        started = time.perf_counter()
        versions = [
            ModelVersion.objects.create(
                direction=direction,
                kind="generative",
                backend="onnx",
                base_model="bench",
                status="ready",
                threshold=0.8,
                is_active=n == 2,
            ).pk
            for n in range(3)
            for direction in DIRECTIONS
        ]
        rng = random.Random(0)
        now = timezone.now()
        span = timedelta(days=days).total_seconds()
        served_names = [name for name, _ in SERVED]
        weights = [weight for _, weight in SERVED]
        output = json.dumps([{"subject": "A", "predicate": "b", "object": "C"}])
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY boundary_boundarycall ({COLUMNS}) FROM STDIN") as copy,
        ):
            for n in range(calls):
                direction = "decomposition" if n % 2 else "recomposition"
                served = rng.choices(served_names, weights)[0]
                local = served in ("student", "degraded")
                llm = served == "teacher"
                confidence = rng.random() if local else None
                reviewed = rng.random() < 0.05 and served != "unserved"
                copy.write_row(
                    (
                        direction,
                        json.dumps(f"Sentence number {n}."),
                        None if served == "unserved" else output,
                        f"{n:064x}",
                        f"{n:064x}",
                        "eval" if n % 10 == 0 else "train",
                        served,
                        rng.choice(versions) if local else None,
                        confidence,
                        "low_confidence" if llm or served == "degraded" else "",
                        "timeout" if served in ("degraded", "unserved") else "",
                        "{}",
                        "[]",
                        "claude-haiku-4-5" if llm else "",
                        rng.lognormvariate(2.0, 0.4) if local else rng.lognormvariate(6.7, 0.3),
                        round(rng.uniform(0.0005, 0.003), 6) if llm else None,
                        round(rng.uniform(0.0005, 0.003), 6) if served == "student" else None,
                        rng.choice(["accepted", "corrected", "rejected"])
                        if reviewed
                        else "unreviewed",
                        (1 - confidence) if confidence is not None else 0.0,
                        0,
                        now - timedelta(seconds=rng.random() * span),
                    )
                )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE boundary_boundarycall")
        return round(time.perf_counter() - started, 1)

    def _measure(self, runs: int) -> dict[str, Any]:
        from review import metrics

        series: dict[str, dict[str, dict[str, float]]] = {}
        for name, build in [*metrics.SERIES.items(), ("summary", metrics.summary)]:
            series[name] = {}
            for range_name in metrics.RANGES:
                window = metrics.Window.parse(range_name, "decomposition")
                timings = []
                for _ in range(runs):
                    started = time.perf_counter()
                    build(window)
                    timings.append((time.perf_counter() - started) * 1000)
                series[name][range_name] = {
                    "first_ms": round(timings[0], 1),
                    "median_ms": round(statistics.median(timings), 1),
                }
        return {"runs": runs, "series": series}
