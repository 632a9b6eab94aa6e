from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from boundary.generation import GenerativeStudent, OrtGenAIGenerator, TransformersGenerator
from boundary.models import Direction, ModelKind, ModelVersion
from boundary.prompts import decomposition_prompt
from boundary.runtime import Generator
from boundary.stats import percentile

# Twenty-word sentences of the kind the product decomposes (not used for training).
SENTENCES = [
    "Chris prefers composable architectures and works at Valence, a Berlin company that builds "
    "developer tools for data teams.",
    "Maya, who leads the Atlas team in Lisbon, switched from Python to Rust for the billing "
    "service last spring.",
    "The Orbit project, maintained by Ana since 2019, depends on PostgreSQL and ships a new "
    "release every six weeks.",
    "Ravi mentors two junior engineers, reports to Fatima, and prefers Vim with tmux over any "
    "graphical code editor.",
    "Alan Bean, born in Wheeler, Texas, was a test pilot who walked on the Moon during Apollo 12.",
]


class Command(BaseCommand):
    help = (
        "Latency of the reference backend (transformers) and the fast one (onnxruntime-genai) "
        "on the same model and inputs, side by side: p50/p95 per decomposition, tokens/s."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--version",
            type=int,
            help="A registered version (default: the active decomposition version).",
        )
        parser.add_argument("--runs", type=int, default=20, help="Timed runs per sentence set.")
        parser.add_argument("--max-new-tokens", type=int, default=40)
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(
        self, *args: Any, version: int | None, runs: int, max_new_tokens: int, **options: Any
    ) -> None:
        model = self._version(version)
        artifact = Path(model.artifact_path)
        backends = {"transformers (reference)": artifact / "merged"}
        if (artifact / "ort-genai").is_dir():
            backends["onnxruntime-genai (fast)"] = artifact / "ort-genai"
        results: list[dict[str, Any]] = []
        for name, folder in backends.items():
            generator: Generator = (
                TransformersGenerator(folder)
                if "merged" in folder.name
                else OrtGenAIGenerator(folder)
            )
            results.append(self._measure(name, generator, runs, max_new_tokens))
        load = os.getloadavg()[0]
        if options["json"]:
            self.stdout.write(json.dumps({"version": model.pk, "load": load, "results": results}))
            return
        self.stdout.write(
            f"v{model.pk} ({model.direction}, base {model.base_model}); {runs} runs x "
            f"{len(SENTENCES)} sentences; CPU threads {os.cpu_count()}; load average {load:.2f}"
        )
        if load > 1.0:
            self.stdout.write("warning: the machine is busy; the numbers below are pessimistic")
        self.stdout.write(
            f"{'backend':28} {'p50 ms':>8} {'p95 ms':>8} {'tokens/s':>9} {'answer ok':>9}"
        )
        for row in results:
            self.stdout.write(
                f"{row['backend']:28} {row['p50_ms']:8.0f} {row['p95_ms']:8.0f} "
                f"{row['tokens_per_s']:9.0f} {row['parsed']:>9}"
            )

    def _version(self, version: int | None) -> ModelVersion:
        models = ModelVersion.objects.filter(kind=ModelKind.GENERATIVE).exclude(artifact_path="")
        model = (
            models.filter(pk=version).first()
            if version is not None
            else models.filter(direction=Direction.DECOMPOSITION, is_active=True).first()
        )
        if model is None or not (Path(model.artifact_path) / "merged").is_dir():
            raise CommandError(
                "no trained generative model to benchmark (encoders: `valence bench-api`): pass "
                "--version N of a trained version, or run "
                "`valence bootstrap` / `valence train-boundary --direction decomposition --sync`"
            )
        return model

    def _measure(
        self, name: str, generator: Generator, runs: int, max_new_tokens: int
    ) -> dict[str, Any]:
        student = GenerativeStudent(generator, max_new_tokens=max_new_tokens)
        for sentence in SENTENCES[:2]:  # warm-up: first calls pay for allocations and caches
            generator.generate(decomposition_prompt(sentence), 4)
        latencies: list[float] = []
        tokens, seconds, parsed = 0, 0.0, 0
        for _ in range(runs):
            for sentence in SENTENCES:
                started = time.perf_counter()
                generation = generator.generate(decomposition_prompt(sentence), max_new_tokens)
                elapsed = time.perf_counter() - started
                latencies.append(elapsed * 1000)
                tokens += len(generation.token_logprobs)
                seconds += elapsed
        for sentence in SENTENCES:
            try:
                student.decompose(sentence)
                parsed += 1
            except Exception:  # the benchmark reports how many answers parse; it does not judge
                pass
        return {
            "backend": name,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "tokens_per_s": tokens / seconds if seconds else 0.0,
            "parsed": f"{parsed}/{len(SENTENCES)}",
            "runs": len(latencies),
        }
