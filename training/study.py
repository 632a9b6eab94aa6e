"""Offline studies that answer the design card's open questions by measurement.

Each question trains students with the product's own trainers on the first N records of a
seeded shuffle of a WebNLG-format file, and scores them with the product's own evaluation
(`training.evaluation.evaluate`: Strict F1 or chrF++, exact agreement, the cross-fitted
calibration the gate uses) on records of another file that share **no triple set and no text**
with any training record (those are dropped and counted):

- `curve`: how many pairs before a student pays off (the encoder, or a LoRA, at growing sizes);
- `finetune`: LoRA adapters against full fine-tuning of the same base, same steps and data;
- `joint`: one generative model for both directions against one per direction (same steps per
  direction: the joint model trains on both mixtures for twice as many);
- `base`: the same student on different base models.

Nothing touches the database: artefacts go to a scratch folder that is deleted afterwards,
unless `keep` is set.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from boundary.directions import DECOMPOSITION, RECOMPOSITION
from boundary.fingerprint import text_key, triple_set_key
from boundary.prompts import (
    decomposition_prompt,
    decomposition_target,
    recomposition_prompt,
    recomposition_target,
)
from boundary.students import StudentSpec, clear_cache, load_student
from boundary.triples import Triple, normalise_text, parse_triples
from training.datasets import read_jsonl
from training.evaluation import Example, evaluate
from training.scoring import score_decomposition

QUESTIONS = ("curve", "finetune", "joint", "base")
TARGET, Z = 0.95, 1.645  # the product's default calibration target and bound
DECOMPOSE, RECOMPOSE = (DECOMPOSITION,), (RECOMPOSITION,)
BOTH = (DECOMPOSITION, RECOMPOSITION)


@dataclass(frozen=True)
class Record:
    text: str
    triples: tuple[Triple, ...]


@dataclass(frozen=True)
class StudyData:
    train: list[Record]  # seeded order
    evaluation: list[Record]
    dropped: int  # evaluation records sharing a text or triple set with the training file


@dataclass(frozen=True)
class Arm:
    """One student to train and score."""

    name: str
    kind: str  # encoder | generative
    directions: tuple[str, ...]  # what it trains on (and is scored on)
    records: int  # training records (the first N of the seeded order)
    base: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    question: str
    arm: str
    direction: str
    kind: str
    base: str
    records: int
    steps: int
    train_seconds: float
    headline: float
    headline_metric: str
    exact_share: float  # decomposition: exactly the reference triple set; recomposition: mentions
    answered_alone: float  # cross-fitted share answered at the target
    answered_agreement: float | None
    ece: float
    latency_p50_ms: float
    evaluated: int
    config: dict[str, Any]
    # Decomposition: Strict F1 on held-out texts none of whose entities occur in the training
    # records, on those with at least one such entity, and on those all of whose entities do.
    by_entities: dict[str, dict[str, float | int]] = field(default_factory=dict)


def load_data(
    train_path: Path,
    evaluation_path: Path,
    *,
    category: str | None,
    seed: int,
    evaluation_limit: int | None,
) -> StudyData:
    """Training records in seeded order; evaluation records held apart by text and triple set."""
    train = _records(train_path, category)
    random.Random(seed).shuffle(train)
    texts = {text_key(r.text) for r in train}
    facts = {triple_set_key(r.triples) for r in train}
    evaluation, dropped = [], 0
    for record in _records(evaluation_path, category):
        if text_key(record.text) in texts or triple_set_key(record.triples) in facts:
            dropped += 1
        else:
            evaluation.append(record)
    random.Random(seed).shuffle(evaluation)
    return StudyData(train, evaluation[:evaluation_limit], dropped)


def _records(path: Path, category: str | None) -> list[Record]:
    return [
        Record(str(row["text"]), tuple(parse_triples(row["triples"])))
        for _, row in read_jsonl(path)
        if category is None or row.get("category") == category
    ]


def examples_for(direction: str, records: Sequence[Record]) -> list[Example]:
    """Decomposition: one per text. Recomposition: one per triple set, its texts as references."""
    if direction == DECOMPOSITION:
        return [Example(source=r.text, references=(r.triples,)) for r in records]
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(triple_set_key(record.triples), []).append(record)
    return [
        Example(source=group[0].triples, references=tuple(r.text for r in group))
        for group in grouped.values()
    ]


def arms_for(
    question: str,
    *,
    data: StudyData,
    sizes: Sequence[int],
    kind: str,
    steps: int,
    bases: Sequence[str],
    encoder_base: str,
    generative_base: str,
    encoder_epochs: int = 8,
) -> list[Arm]:
    """The students a question compares (sizes beyond the data are capped to it)."""
    everything = len(data.train)
    if question == "curve":
        base = encoder_base if kind == "encoder" else generative_base
        config = {"epochs": encoder_epochs} if kind == "encoder" else {"max_steps": steps}
        counts = sorted({min(n, everything) for n in sizes})
        return [Arm(f"{n} records", kind, DECOMPOSE, n, base, config) for n in counts]
    if question == "finetune":
        lora = {"max_steps": steps, "epochs": 100}
        full = {**lora, "method": "full", "learning_rate": 5e-5}
        return [
            Arm("LoRA r16, lr 1e-3", "generative", DECOMPOSE, everything, generative_base, lora),
            Arm("full, lr 5e-5", "generative", DECOMPOSE, everything, generative_base, full),
        ]
    if question == "joint":
        one = {"max_steps": steps, "epochs": 100}
        both = {"max_steps": 2 * steps, "epochs": 100}
        return [
            Arm("per direction", "generative", DECOMPOSE, everything, generative_base, one),
            Arm("per direction", "generative", RECOMPOSE, everything, generative_base, one),
            Arm("one for both", "generative", BOTH, everything, generative_base, both),
        ]
    if question == "base":
        config = (
            {"epochs": encoder_epochs} if kind == "encoder" else {"max_steps": steps, "epochs": 100}
        )
        return [Arm(base, kind, DECOMPOSE, everything, base, config) for base in bases]
    raise ValueError(f"unknown question {question!r}; one of {', '.join(QUESTIONS)}")


def run_arm(
    question: str,
    arm: Arm,
    data: StudyData,
    folder: Path,
    *,
    resolve: Callable[[str], str],
) -> list[Row]:
    """Train the arm's student, then score it on each direction it learnt."""
    records = data.train[: arm.records]
    base = resolve(arm.base)
    artifact = folder / f"{len(list(folder.iterdir()))}"
    started = time.perf_counter()
    if arm.kind == "encoder":
        from training.trainers.encoder import EncoderConfig, train_encoder

        texts = [(r.text, list(r.triples)) for r in records]
        encoded = train_encoder(base, texts, artifact, EncoderConfig(**arm.config))
        steps, backend = encoded.steps, "onnx"
    else:
        from training.trainers.generative import TrainConfig, train_lora

        pairs = [pair for d in arm.directions for pair in _generative_pairs(d, records)]
        trained = train_lora(base, pairs, artifact, TrainConfig(**arm.config))
        steps, backend = trained.steps, "transformers"
    seconds = time.perf_counter() - started
    rows = []
    for direction in arm.directions:
        clear_cache()  # the serving cache is keyed by version id, and every arm is "v0"
        student = load_student(StudentSpec(0, direction, arm.kind, backend, base, str(artifact)))
        examples = examples_for(direction, data.evaluation)
        report = evaluate(student, direction, examples, target=TARGET, z=Z)
        metrics = report.metrics
        held = metrics["calibration"]["held_out"] or metrics["calibration"]["choice"]
        by_entities = (
            entity_subsets(records, data.evaluation, report.predictions)
            if direction == DECOMPOSITION
            else {}
        )
        rows.append(
            Row(
                question=question,
                arm=arm.name,
                direction=direction,
                kind=arm.kind,
                base=arm.base,
                records=arm.records,
                steps=steps,
                train_seconds=round(seconds, 1),
                headline=metrics["headline"],
                headline_metric=metrics["headline_metric"],
                exact_share=metrics["agreement"],
                answered_alone=1 - held["fallback_rate"],
                answered_agreement=held["agreement"],
                ece=metrics["calibration"]["ece"],
                latency_p50_ms=report.latency_p50_ms,
                evaluated=metrics["count"],
                config=arm.config,
                by_entities=by_entities,
            )
        )
    return rows


def entities_of(record: Record) -> set[str]:
    return {normalise_text(e) for t in record.triples for e in (t.subject, t.object)}


def entity_subsets(
    trained: Sequence[Record], evaluated: Sequence[Record], predictions: Sequence[Any]
) -> dict[str, dict[str, float | int]]:
    """Strict F1 (our scorer) on the held-out texts with only unseen entities, with at least
    one unseen entity, and with only seen ones.

    An entity is seen when it is the subject or object of any training record's triple
    (compared after `normalise_text`: case, underscores and quotes do not count)."""
    known = set().union(*(entities_of(r) for r in trained)) if trained else set()
    groups: dict[str, list[int]] = {"unseen_entities": [], "some_unseen": [], "seen_entities": []}
    for index, record in enumerate(evaluated):
        entities = entities_of(record)
        if not entities & known:
            groups["unseen_entities"].append(index)
        if entities <= known:
            groups["seen_entities"].append(index)
        else:  # at least one entity it never saw (a narrow domain rarely has none it knows)
            groups["some_unseen"].append(index)
    result: dict[str, dict[str, float | int]] = {}
    for name, indexes in groups.items():
        if not indexes:
            result[name] = {"count": 0}
            continue
        scores = score_decomposition(
            [predictions[i].output or [] for i in indexes],
            [list(evaluated[i].triples) for i in indexes],
        )
        result[name] = {"count": len(indexes), "strict_f1": scores["strict"]["f1"]}
    return result


def _generative_pairs(direction: str, records: Sequence[Record]) -> list[tuple[str, str]]:
    if direction == DECOMPOSITION:
        return [(decomposition_prompt(r.text), decomposition_target(r.triples)) for r in records]
    return [(recomposition_prompt(r.triples), recomposition_target(r.text)) for r in records]


def run_study(
    question: str,
    arms: Sequence[Arm],
    data: StudyData,
    *,
    resolve: Callable[[str], str],
    say: Callable[[str], None] = print,
    keep: Path | None = None,
) -> list[Row]:
    folder = keep or Path(tempfile.mkdtemp(prefix="valence-study-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for arm in arms:
            directions = ", ".join(arm.directions)
            say(f"training {arm.kind} '{arm.name}' on {arm.records} records ({directions})")
            for row in run_arm(question, arm, data, folder, resolve=resolve):
                say(format_row(row))
                rows.append(row)
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def format_row(row: Row) -> str:
    agreement = "–" if row.answered_agreement is None else f"{row.answered_agreement:.1%}"
    subsets = "".join(
        f"  {name.replace('_entities', '')} {group.get('strict_f1', 0.0):.3f} (n={group['count']})"
        for name, group in row.by_entities.items()
    )
    return (
        f"  {row.arm:<22} {row.direction:<13} records {row.records:>5}  steps {row.steps:>5}  "
        f"{row.train_seconds:>6.0f} s  headline {row.headline:.3f}  exact {row.exact_share:.1%}  "
        f"alone at 95 % {row.answered_alone:.1%} ({agreement})  ECE {row.ece:.3f}  "
        f"p50 {row.latency_p50_ms:.0f} ms{subsets}"
    )


def write_report(path: Path, configuration: dict[str, Any], rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"configuration": configuration, "rows": [asdict(row) for row in rows]}
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
