from __future__ import annotations

import json
import os
import random
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from boundary.models import Direction, ModelKind, ModelVersion
from training.api_bench import ScratchServer
from training.datasets import read_jsonl
from training.management.commands.bench_boundary import SENTENCES
from valence_site.scratch_db import scratch_database


class Command(BaseCommand):
    help = (
        "Decomposition through the real API (gunicorn on loopback, a scratch database): p50/p95 "
        "of the encoder and of the generative student on the same sentences, then the "
        "encoder's throughput under concurrent load. Defaults to the active versions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--encoder", type=int, help="Encoder version (default: active).")
        parser.add_argument("--generative", type=int, help="Generative version (default: active).")
        parser.add_argument(
            "--data", type=Path, help="WebNLG-style JSONL to take sentences from (its 'text')."
        )
        parser.add_argument("--sentences", type=int, default=50, help="How many, seeded sample.")
        parser.add_argument("--runs", type=int, default=4, help="Latency passes (encoder).")
        parser.add_argument("--generative-runs", type=int, default=1)
        parser.add_argument("--seconds", type=float, default=15.0, help="Throughput run length.")
        parser.add_argument("--concurrency", type=int, default=8, help="Concurrent clients.")
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
        parser.add_argument("--threads", type=int, default=2, help="Threads per worker.")
        parser.add_argument("--encoder-threads", type=int, default=1, help="onnxruntime threads.")
        parser.add_argument(
            "--postgres",
            metavar="URL",
            default="",
            help="Serve from a scratch database on this PostgreSQL server (postgres://user@host/"
            "name). Default: the configured server when it is PostgreSQL, else SQLite.",
        )
        parser.add_argument(
            "--sqlite", action="store_true", help="Serve from SQLite whatever is configured."
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        encoder = self._version(ModelKind.ENCODER, options["encoder"])
        generative = self._version(ModelKind.GENERATIVE, options["generative"], required=False)
        sentences = self._sentences(options["data"], options["sentences"])
        with ExitStack() as stack:
            database_url = ""
            if not options["sqlite"] and (options["postgres"] or connection.vendor == "postgresql"):
                database_url = stack.enter_context(
                    scratch_database("apibench", server_url=options["postgres"])
                )
            server = ScratchServer(
                workers=options["workers"],
                threads=options["threads"],
                encoder_threads=options["encoder_threads"],
                database_url=database_url,
            )
            stack.callback(server.close)
            report = self._run(server, encoder, generative, sentences, options)
            report["database"] = "postgresql" if database_url else "sqlite"
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self._print(report)

    def _run(self, server, encoder, generative, sentences, options) -> dict:
        report: dict = {
            "encoder": encoder.pk,
            "generative": generative.pk if generative else None,
            "sentences": len(sentences),
            "workers": options["workers"],
            "threads": options["threads"],
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg()[0],
        }
        server.prepare([v for v in (encoder, generative) if v])
        phases = [("encoder", encoder, options["runs"])]
        if generative:
            phases.append(("generative", generative, options["generative_runs"]))
        for name, version, runs in phases:
            server.activate([version])
            server.start()
            try:
                server.warm_up(sentences)
                self.stderr.write(f"measuring {name} v{version.pk} latency ...")
                report[f"{name}_latency"] = asdict(server.latency(sentences, runs))
                if name == "encoder":
                    self.stderr.write(
                        f"measuring encoder throughput for {options['seconds']:.0f} s ..."
                    )
                    report["encoder_throughput"] = asdict(
                        server.throughput(sentences, options["seconds"], options["concurrency"])
                    )
            finally:
                server.stop()
        report["stored_calls"] = server.stored_calls()
        return report

    def _print(self, report: dict) -> None:
        self.stdout.write(
            f"{report['sentences']} sentences; gunicorn {report['workers']} workers x "
            f"{report['threads']} threads on {report['cpus']} CPUs; {report['database']}; "
            f"load before {report['load_before']:.2f}"
        )
        self.stdout.write(f"{'path':38} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for name in ("encoder", "generative"):
            row = report.get(f"{name}_latency")
            if not row:
                continue
            label = f"{name} v{report[name]}, all"
            self.stdout.write(
                f"{label:38} {row['requests']:8} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f}"
            )
            for stage, numbers in row["stages"].items():
                label = f"  answered {stage}"
                self.stdout.write(
                    f"{label:38} {numbers['count']:8} {numbers['p50_ms']:8.1f} "
                    f"{numbers['p95_ms']:8.1f}"
                )
        load = report["encoder_throughput"]
        self.stdout.write(
            f"encoder throughput: {load['requests_per_s']:.0f} requests/s with "
            f"{load['concurrency']} clients for {load['seconds']:.1f} s "
            f"({load['completed']} ok, {load['errors']} errors; p50 {load['p50_ms']:.1f} ms, "
            f"p95 {load['p95_ms']:.1f} ms); {report['stored_calls']} calls stored"
        )

    def _version(self, kind: str, pk: int | None, *, required: bool = True) -> ModelVersion | None:
        versions = ModelVersion.objects.filter(direction=Direction.DECOMPOSITION, kind=kind)
        version = versions.filter(pk=pk).first() if pk else versions.filter(is_active=True).first()
        if version is None and required:
            raise CommandError(f"no {kind} decomposition version (pass --{kind} N)")
        if version is not None and version.status != "ready":
            raise CommandError(f"v{version.pk} is {version.status}, not ready")
        return version

    def _sentences(self, data: Path | None, count: int) -> list[str]:
        if data is None:
            return list(SENTENCES)
        if not data.is_file():
            raise CommandError(f"{data} does not exist")
        texts = sorted({str(record["text"]) for _, record in read_jsonl(data) if "text" in record})
        return random.Random(0).sample(texts, min(count, len(texts)))
