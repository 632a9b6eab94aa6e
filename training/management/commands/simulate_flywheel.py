from __future__ import annotations

import json
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.directions import DECOMPOSITION, RECOMPOSITION
from training.flywheel import DIRECTIONS, Flywheel, FlywheelConfig
from training.teacher_standin import parse_latency_range
from valence_site.scratch_db import scratch_database

WEBNLG = Path(settings.BASE_DIR).parent / "shared" / "data" / "webnlg"


class Command(BaseCommand):
    help = (
        "Replay a WebNLG-format JSONL stream through the real service (gunicorn, a scratch "
        "database, the django-q2 worker with the product's own trigger, training, gate and "
        "promotion) against a teacher stand-in on loopback; report per window the share answered "
        "locally, the agreement of served answers, LLM spend against the all-LLM baseline and "
        "latency, as JSON, CSV and an SVG chart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", type=Path, default=WEBNLG / "train.jsonl")
        parser.add_argument(
            "--evaluate",
            type=Path,
            default=WEBNLG / "dev.jsonl",
            help="Measured through the service after the stream ('' to skip).",
        )
        parser.add_argument("--category", help="Only records of this category (both files).")
        parser.add_argument(
            "--direction",
            choices=[*DIRECTIONS, "both"],
            default="both",
            help="Which calls each record makes.",
        )
        parser.add_argument("--limit", type=int, help="Replay only the first N records.")
        parser.add_argument("--seed", type=int, default=0, help="The stream's order.")
        parser.add_argument("--window", type=int, default=250, help="Calls per reported window.")
        parser.add_argument("--concurrency", type=int, default=8, help="Clients at once.")
        parser.add_argument(
            "--teacher-latency-ms",
            type=parse_latency_range,
            default=(800.0, 800.0),
            metavar="MIN,MAX",
            help="The stand-in's latency per call (default 800).",
        )
        parser.add_argument(
            "--teacher-error-rate",
            type=float,
            default=0.0,
            help="Share of the stand-in's answers that are wrong on purpose (a fallible teacher).",
        )
        parser.add_argument("--train-every", type=int, default=1500)
        parser.add_argument("--encoder-train-every", type=int, default=1500)
        parser.add_argument(
            "--recalibrate-every",
            type=int,
            default=200,
            help="New teacher answers before a candidate refused for want of calibration "
            "evidence is judged again (0: never).",
        )
        parser.add_argument(
            "--auto-train",
            default="decomposition:encoder,recomposition:generative",
            help="Students the trigger trains (direction:kind, comma-separated).",
        )
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Replay at full speed instead of pausing while a training is due or running.",
        )
        parser.add_argument(
            "--setting",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="Another setting for the service (repeatable), e.g. VALENCE_TRAIN_EPOCHS=1.",
        )
        parser.add_argument(
            "--postgres",
            metavar="URL",
            default="",
            help="Serve from a scratch PostgreSQL database on this server instead of SQLite.",
        )
        parser.add_argument("--out", type=Path, default=Path("flywheel-report"))
        parser.add_argument("--json", action="store_true", help="Print the whole report.")

    def handle(self, *args: Any, **options: Any) -> None:
        stream: Path = options["stream"]
        if not stream.is_file():
            raise CommandError(f"{stream}: no such file")
        evaluation = options["evaluate"] if str(options["evaluate"]) not in ("", ".") else None
        if evaluation is not None and not evaluation.is_file():
            raise CommandError(f"{evaluation}: no such file")
        if not 0.0 <= options["teacher_error_rate"] <= 1.0:
            raise CommandError("--teacher-error-rate must be within [0, 1]")
        for number in ("window", "concurrency", "train_every", "encoder_train_every"):
            if options[number] < 1:
                raise CommandError(f"--{number.replace('_', '-')} must be at least 1")
        environment = {}
        for item in options["setting"]:
            name, sep, value = item.partition("=")
            # Only the service's own settings: the teacher must stay the stand-in on loopback.
            if not sep or not name.startswith("VALENCE_"):
                raise CommandError(f"--setting {item!r}: expected VALENCE_NAME=VALUE")
            environment[name] = value
        # A kill (SIGTERM) unwinds like Ctrl-C, so gunicorn and the worker are stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        direction = options["direction"]
        directions = (DECOMPOSITION, RECOMPOSITION) if direction == "both" else (direction,)
        with ExitStack() as stack:
            database_url = ""
            if options["postgres"]:
                database_url = stack.enter_context(
                    scratch_database("flywheel", server_url=options["postgres"], keep=True)
                )
            config = FlywheelConfig(
                stream=stream,
                out_dir=options["out"],
                evaluation=evaluation,
                category=options["category"],
                directions=directions,
                seed=options["seed"],
                limit=options["limit"],
                window=options["window"],
                concurrency=options["concurrency"],
                teacher_latency_ms=options["teacher_latency_ms"],
                teacher_error_rate=options["teacher_error_rate"],
                train_every=options["train_every"],
                encoder_train_every=options["encoder_train_every"],
                recalibrate_every=max(0, options["recalibrate_every"]),
                auto_train=tuple(
                    item.strip() for item in options["auto_train"].split(",") if item.strip()
                ),
                wait_for_training=not options["no_wait"],
                database_url=database_url,
                environment=environment,
            )
            try:
                report = Flywheel(config, say=self.stdout.write).run()
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        self.stdout.write(format_summary(report, options["out"]))


def format_summary(report: dict[str, Any], out: Path) -> str:
    config = report["configuration"]
    teacher = report["teacher"]
    lines = [
        "configuration: "
        + ", ".join(
            f"{key}={config[key]}"
            for key in ("stream", "category", "directions", "limit", "seed", "window")
        ),
        f"teacher: {teacher['kind']}, latency {teacher['latency_ms']} ms, "
        f"error rate {teacher['error_rate']:.0%}; {teacher['requests']} requests",
        f"wall time: {report['seconds'] / 60:.1f} min; pauses for training: "
        f"{sum(p['seconds'] for p in report['pauses']) / 60:.1f} min",
    ]
    stream = report["stream"]
    lines.append("stream: " + _figures(stream))
    if report.get("stream_spend_share") is not None:
        lines.append(
            f"LLM spend over the stream: {report['stream_spend_share']:.1%} of the all-LLM "
            f"baseline (+ ${report['other_teacher_spend_usd']:.4f} outside the stream)"
        )
    if "dec_calls" in stream:
        lines.append(
            f"decomposition p50 over the last 1,000 calls: "
            f"{report['last_1000_decomposition_p50_ms']:.0f} ms"
        )
    if "evaluation" in report:
        lines.append(
            f"after the stream, on {report['evaluation']['entries']} held-out entries: "
            + _figures(report["evaluation"])
        )
    lines.append(
        f"written: {out}/flywheel.json, flywheel.csv, flywheel.svg; service: {out}/service"
    )
    return "\n".join(lines)


def _figures(row: dict[str, Any]) -> str:
    parts = []
    if "dec_local_share" in row:
        parts.append(
            f"decompositions local {row['dec_local_share']:.1%} "
            f"(remembered {_share(row.get('dec_memory_share'))}; "
            f"exactly right when local: {_share(row.get('dec_local_exact'))}; "
            f"served: {_share(row.get('dec_served_exact'))})"
        )
    if "rec_local_share" in row:
        parts.append(
            f"recompositions local {row['rec_local_share']:.1%} "
            f"(remembered {_share(row.get('rec_memory_share'))}; "
            f"round trip when local: {_share(row.get('rec_local_round_trip'))}; "
            f"chrF++ served {_number(row.get('rec_served_chrf'))})"
        )
    return "; ".join(parts)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
