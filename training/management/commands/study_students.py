from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.datasets import ImportFileError
from training.study import QUESTIONS, arms_for, format_row, load_data, run_study, write_report

DATA = Path(os.environ.get("VALENCE_WEBNLG_DIR", "../shared/data/webnlg"))


class Command(BaseCommand):
    help = (
        "Answer an open question by measurement: train students with the product's trainers on "
        "a seeded sample of a WebNLG-format file and score them with its evaluation on another "
        "file's records that share no text or triple set with the training ones. Questions: "
        "curve (pairs before a student pays off), finetune (LoRA vs full), joint (one model for "
        "both directions vs one each), base (base models)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question", choices=QUESTIONS)
        parser.add_argument("--train", type=Path, default=DATA / "train.jsonl")
        parser.add_argument("--evaluate", type=Path, default=DATA / "dev.jsonl")
        parser.add_argument("--category", help="Only records of this category, in both files.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--eval-limit", type=int, help="Score on this many records at most.")
        parser.add_argument(
            "--sizes",
            default="250,500,1000,2000,100000",
            help="curve: training records per student (capped to what the file has).",
        )
        parser.add_argument("--kind", choices=("encoder", "generative"), default="encoder")
        parser.add_argument(
            "--steps", type=int, default=150, help="Optimiser steps of a generative student."
        )
        parser.add_argument(
            "--epochs",
            type=int,
            default=8,
            help="Epochs of an encoder student (curve, base): fewer for a broad training file.",
        )
        parser.add_argument("--bases", default="", help="base: comma-separated base models.")
        parser.add_argument(
            "--records",
            type=int,
            help="finetune, joint, base: train on the first N records (default: all).",
        )
        parser.add_argument("--out", type=Path, default=Path("study-report"))
        parser.add_argument("--keep", action="store_true", help="Keep the trained artefacts.")

    def handle(self, *args: object, **options: Any) -> None:
        from training.base_models import resolve_base_model

        try:
            data = load_data(
                options["train"],
                options["evaluate"],
                category=options["category"],
                seed=options["seed"],
                evaluation_limit=options["eval_limit"],
            )
        except (OSError, ImportFileError) as exc:
            raise CommandError(str(exc)) from None
        if options["records"] is not None and options["records"] < 1:
            raise CommandError("--records must be at least 1")
        if options["epochs"] < 1:
            raise CommandError("--epochs must be at least 1")
        if options["records"]:
            data = replace(data, train=data.train[: options["records"]])
        if not data.train or not data.evaluation:
            raise CommandError("no training or no held-out evaluation records")
        try:
            sizes = [int(size) for size in options["sizes"].split(",") if size.strip()]
        except ValueError:
            raise CommandError("--sizes takes comma-separated whole numbers") from None
        bases = [base.strip() for base in options["bases"].split(",") if base.strip()]
        if options["question"] == "base" and len(bases) < 2:
            raise CommandError("base needs at least two --bases to compare")
        arms = arms_for(
            options["question"],
            data=data,
            sizes=sizes,
            kind=options["kind"],
            steps=options["steps"],
            bases=bases,
            encoder_base=settings.VALENCE_ENCODER_BASE_MODEL,
            generative_base=settings.VALENCE_BASE_MODELS["decomposition"],
            encoder_epochs=options["epochs"],
        )
        configuration = {
            "question": options["question"],
            "train": str(options["train"]),
            "evaluate": str(options["evaluate"]),
            "category": options["category"],
            "seed": options["seed"],
            "train_records": len(data.train),
            "evaluation_records": len(data.evaluation),
            "evaluation_dropped_shared_with_train": data.dropped,
            "scorer": "valence (Strict F1 for decomposition, sacrebleu chrF++ for recomposition)",
            "calibration": "cross-fitted halves, target 95 %, one-sided Wilson bound (z 1.645)",
            "arms": [arm.__dict__ for arm in arms],
        }
        self.stdout.write(json.dumps(configuration, indent=2, default=str))
        keep = options["out"] / "artefacts" if options["keep"] else None
        rows = run_study(
            options["question"],
            arms,
            data,
            resolve=lambda name: resolve_base_model(name, settings.VALENCE_MODEL_DIR),
            say=self.stdout.write,
            keep=keep,
        )
        path = options["out"] / f"{options['question']}.json"
        write_report(path, configuration, rows)
        self.stdout.write("\n".join(format_row(row) for row in rows))
        self.stdout.write(f"report: {path}")
