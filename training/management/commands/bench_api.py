from __future__ import annotations

import json
import os
import random
import time
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import override_settings

from boundary import students
from boundary.models import Direction, ModelKind, ModelVersion
from boundary.stats import percentile
from boundary.students import load_student
from training.api_bench import ScratchServer
from training.datasets import read_jsonl
from training.management.commands.bench_boundary import SENTENCES
from training.teacher_standin import (
    DEFAULT_LATENCY_MS,
    TeacherStandIn,
    parse_latency_range,
    references_from_records,
)
from valence_site.scratch_db import scratch_database

NO_TEACHER_NOTE = "unsure requests came back degraded: no teacher"
# Always shown, zeros included, so that a missing teacher cannot go unnoticed.
SERVED_BY = ("student", "teacher", "degraded")


class Command(BaseCommand):
    help = (
        "Decomposition through the real API (gunicorn on loopback, a scratch database): p50/p95 "
        "of the encoder and of the generative student on the same sentences, then the "
        "encoder's throughput under concurrent load, each split by who served the answers. "
        "Defaults to the active versions; without --teacher-standin there is no teacher."
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
        parser.add_argument(
            "--teacher-standin",
            action="store_true",
            help="Point the server's teacher at a fake Messages API on loopback (reference "
            "triples from --data, realistic usage, a latency per call) instead of none.",
        )
        parser.add_argument(
            "--teacher-latency-ms",
            type=parse_latency_range,
            metavar="MIN,MAX",
            help="The stand-in's latency, drawn uniformly per call (default 500,1500).",
        )
        parser.add_argument(
            "--sure",
            action="store_true",
            help="Serve the scratch copies with threshold 0: every answer takes the sure local "
            "path, so what a request costs around the model is measured on the path a mature "
            "deployment serves most (without it, unsure answers come back degraded or from the "
            "stand-in).",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["teacher_latency_ms"] is not None and not options["teacher_standin"]:
            raise CommandError("--teacher-latency-ms needs --teacher-standin")
        encoder = self._version(ModelKind.ENCODER, options["encoder"])
        assert encoder is not None  # required: _version raised CommandError otherwise
        generative = self._version(ModelKind.GENERATIVE, options["generative"], required=False)
        sentences, references = self._sentences(options["data"], options["sentences"])
        with ExitStack() as stack:
            teacher = None
            if options["teacher_standin"]:
                teacher = stack.enter_context(
                    TeacherStandIn(
                        references=references,
                        latency_ms=options["teacher_latency_ms"] or DEFAULT_LATENCY_MS,
                        seed=0,
                    )
                )
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
                teacher=teacher,
                # Each sentence is sent several times: remembered, the repeats would measure
                # boundary.memory instead of the models and the LLM this benchmark is about.
                environment={"VALENCE_MEMORY": "off"},
            )
            stack.callback(server.close)
            report = self._run(server, encoder, generative, sentences, options)
            report["database"] = "postgresql" if database_url else "sqlite"
            if teacher is None:
                report["teacher"] = {"kind": "none", "note": NO_TEACHER_NOTE}
            else:
                report["teacher"] = {
                    "kind": "stand-in",
                    "latency_ms": list(teacher.latency_ms),
                    "references": len(teacher.references),
                    **teacher.stats(),
                }
        report["configuration"] = describe_configuration(report)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.stdout.write(format_report(report))

    def _run(
        self,
        server: ScratchServer,
        encoder: ModelVersion,
        generative: ModelVersion | None,
        sentences: list[str],
        options: dict[str, Any],
    ) -> dict[str, Any]:
        report: dict[str, Any] = {
            "encoder": encoder.pk,
            "generative": generative.pk if generative else None,
            "sentences": len(sentences),
            "workers": options["workers"],
            "threads": options["threads"],
            "encoder_threads": options["encoder_threads"],
            "concurrency": options["concurrency"],
            "seconds": options["seconds"],
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg()[0],
            "sure": options["sure"],
        }
        report["encoder_in_process"] = model_alone(
            encoder, sentences, options["runs"], options["encoder_threads"]
        )
        server.prepare([v for v in (encoder, generative) if v])
        phases = [("encoder", encoder, options["runs"])]
        if generative:
            phases.append(("generative", generative, options["generative_runs"]))
        for name, version, runs in phases:
            server.activate([version], sure=options["sure"])
            server.start()
            try:
                server.warm_up(sentences)
                self.stderr.write(f"measuring {name} v{version.pk} latency ...")
                report[f"{name}_latency"] = asdict(server.latency(sentences, runs))
                if name == "encoder":
                    report["transport"] = server.transport(runs * len(sentences))
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

    def _version(self, kind: str, pk: int | None, *, required: bool = True) -> ModelVersion | None:
        versions = ModelVersion.objects.filter(direction=Direction.DECOMPOSITION, kind=kind)
        version = versions.filter(pk=pk).first() if pk else versions.filter(is_active=True).first()
        if version is None and required:
            raise CommandError(f"no {kind} decomposition version (pass --{kind} N)")
        if version is not None and version.status != "ready":
            raise CommandError(f"v{version.pk} is {version.status}, not ready")
        return version

    def _sentences(
        self, data: Path | None, count: int
    ) -> tuple[list[str], dict[str, list[list[str]]]]:
        """The sample, and the reference triples of every text in `data` (for the stand-in)."""
        if data is None:
            return list(SENTENCES), {}
        if not data.is_file():
            raise CommandError(f"{data} does not exist")
        records = [record for _, record in read_jsonl(data)]
        texts = sorted({str(record["text"]) for record in records if "text" in record})
        sample = random.Random(0).sample(texts, min(count, len(texts)))
        return sample, references_from_records(records)


def model_alone(
    version: ModelVersion, sentences: list[str], runs: int, threads: int
) -> dict[str, float]:
    """The same version on the same sentences in this process, no HTTP, no database: what the
    model itself costs. The API's p50 minus this is what each request spends around the model
    (HTTP, authentication, throttling, validation, the stored call and its commit, the JSON)."""
    with override_settings(VALENCE_ENCODER_THREADS=threads):
        student = load_student(version.student_spec())
    try:
        for sentence in sentences[:3]:
            student.decompose(sentence)  # warm-up, as the server gets
        timings = []
        for _ in range(runs):
            for sentence in sentences:
                started = time.perf_counter()
                student.decompose(sentence)
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        students.clear_cache()  # built with this run's thread count; not for anyone else
    return {
        "requests": len(timings),
        "p50_ms": percentile(timings, 50, 0.0),
        "p95_ms": percentile(timings, 95, 0.0),
        "threads": threads,
    }


def describe_configuration(report: dict[str, Any]) -> str:
    """What the figures were measured with, in one line; a number means little without it."""
    teacher = report["teacher"]
    if teacher["kind"] == "none":
        who = "teacher none"
    else:
        low, high = teacher["latency_ms"]
        who = f"teacher stand-in ({low:.0f}-{high:.0f} ms a call)"
    return (
        f"{who}; {report['database']}; gunicorn {report['workers']} workers x "
        f"{report['threads']} threads ({report['encoder_threads']} encoder threads) on "
        f"{report['cpus']} CPUs; {report['concurrency']} clients for {report['seconds']:g} s; "
        f"{report['sentences']} sentences; load before {report['load_before']:.2f}; "
        "memory off" + ("; threshold 0 (every answer sure)" if report.get("sure") else "")
    )


def served_by_line(counts: dict[str, int]) -> str:
    """E.g. "served by: 40 student, 10 teacher, 0 degraded", plus any other kind that occurred."""
    kinds = [*SERVED_BY, *sorted(set(counts) - set(SERVED_BY))]
    return "served by: " + ", ".join(f"{counts.get(kind, 0)} {kind}" for kind in kinds)


def format_report(report: dict[str, Any]) -> str:
    """The printed report: configuration first, then the figures, each with its served_by."""
    lines = [
        f"configuration: {report['configuration']}",
        f"{'path':38} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}",
    ]
    for name in ("encoder", "generative"):
        row = report.get(f"{name}_latency")
        if not row:
            continue
        label = f"{name} v{report[name]}, all"
        lines.append(f"{label:38} {row['requests']:8} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f}")
        for stage, numbers in row["stages"].items():
            label = f"  answered {stage}"
            lines.append(
                f"{label:38} {numbers['count']:8} {numbers['p50_ms']:8.1f} {numbers['p95_ms']:8.1f}"
            )
        lines.append(f"  {served_by_line(row['served_by'])}")
        inside, outside = row.get("model_in_request"), row.get("outside_model")
        if inside and outside:
            lines.append(
                f"  per request: local stages p50 {inside['p50_ms']:.1f} ms (stored timings); "
                f"the client's wait beyond them p50 {outside['p50_ms']:.2f} ms, "
                f"p95 {outside['p95_ms']:.2f} ms"
            )
        alone = report.get(f"{name}_in_process")
        if alone:
            label = f"{name} v{report[name]}, in process"
            lines.append(
                f"{label:38} {alone['requests']:8} {alone['p50_ms']:8.1f} {alone['p95_ms']:8.1f}"
            )
            lines.append(
                f"  around the model (API p50 - in-process p50): "
                f"{row['p50_ms'] - alone['p50_ms']:.1f} ms"
            )
            transport = report.get("transport") if name == "encoder" else None
            if transport:
                lines.append(
                    f"  of which HTTP, gunicorn and middleware (GET /healthz p50): "
                    f"{transport['p50_ms']:.1f} ms; the API's own work: "
                    f"{row['p50_ms'] - alone['p50_ms'] - transport['p50_ms']:.1f} ms"
                )
    load = report["encoder_throughput"]
    lines.append(
        f"encoder throughput: {load['requests_per_s']:.0f} requests/s with "
        f"{load['concurrency']} clients for {load['seconds']:.1f} s "
        f"({load['completed']} ok, {load['errors']} errors; p50 {load['p50_ms']:.1f} ms, "
        f"p95 {load['p95_ms']:.1f} ms); {report['stored_calls']} calls stored"
    )
    lines.append(f"  {served_by_line(load['served_by'])}")
    teacher = report["teacher"]
    if teacher["kind"] == "none":
        degraded = load["served_by"].get("degraded", 0)
        lines.append(
            f"note: {NO_TEACHER_NOTE} ({degraded} of {load['completed']} throughput answers); "
            "--teacher-standin adds one"
        )
    else:
        lines.append(
            f"teacher stand-in: {teacher['requests']} calls answered, {teacher['errors']} "
            f"refused; {teacher['input_tokens']} input / {teacher['output_tokens']} output "
            f"tokens; reference triples for {teacher['references']} texts"
        )
    return "\n".join(lines)
