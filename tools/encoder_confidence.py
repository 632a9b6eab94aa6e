"""Which encoder confidence ranks right answers first? A measurement, not product code.

    .venv/bin/python tools/encoder_confidence.py [--category Food] [--epochs 8] [--keep DIR]

Trains the product's encoder (`train_encoder`, default config but `--epochs`) on 4 of 5
entries of `train.jsonl` (a stable hash of the entry, as `valence span-ceiling` splits),
reads the 5th fold ("tune": no text or triple set shared with training) and `dev.jsonl`'s texts
(none shared with any train text) with the served ONNX artefact, and scores each candidate
confidence signal: the threshold is chosen on tune (the product's rule: the lowest whose
accepted answers' Wilson lower bound, z 1.645, reaches 95 %), and what it delivers is measured
on dev (share answered alone and its agreement: the exact triple set, our matching). AUROC of
each signal on both sets says how well it ranks without a threshold.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")

import django  # noqa: E402

django.setup()

from boundary.encoder import MAX_COUNT, TAG_O, EncoderStudent  # noqa: E402
from boundary.fingerprint import text_key, triple_set_key  # noqa: E402
from boundary.triples import parse_triples, same_triples  # noqa: E402
from training.ceiling import held_out_fold  # noqa: E402
from training.datasets import read_jsonl  # noqa: E402
from training.evaluation import (  # noqa: E402
    expected_calibration_error,
    reaches,
    wilson_interval,
)

DATA = ROOT.parent / "shared" / "data" / "webnlg"


@dataclass
class Labelled:
    right: bool
    features: dict[str, float] = field(default_factory=dict)


def read(student: EncoderStudent, text: str, references: list) -> Labelled:
    """The served answer and the signals the candidates are computed from."""
    reading = student.read(text)
    plain = reading.tag_probs[~np.asarray(reading.special_tokens, dtype=bool)]
    top2 = np.sort(plain, axis=-1)
    outside = plain[plain.argmax(-1) == TAG_O]
    ranked = np.sort(reading.relation_probs, axis=-1)
    chose_none = reading.relation_probs.argmax(-1) == 0 if len(ranked) else np.zeros(0, bool)
    margins = ranked[~chose_none, -1] - ranked[~chose_none, -2] if len(ranked) else ranked
    doubt = float(np.prod(reading.relation_probs[chose_none, 0])) if len(ranked) else 1.0
    confidences = reading.confidences
    features = {
        "current": min((reading.complete, *confidences)),
        "triples_product": math.prod(confidences) * reading.complete,
        "count_p": float(reading.count_probs[min(len(reading.triples), MAX_COUNT)]),
        "doubt": doubt,
        "none_min": float(reading.relation_probs[chose_none, 0].min()) if chose_none.any() else 1.0,
        "o_min": float(outside[:, TAG_O].min()) if len(outside) else 1.0,
        "tag_margin_min": float((top2[:, -1] - top2[:, -2]).min()) if len(plain) else 1.0,
        "rel_margin_min": float(margins.min()) if len(margins) else 1.0,
        "count_max": float(reading.count_probs.max()),
    }
    right = any(same_triples(reading.triples, ref) for ref in references)
    return Labelled(right, features)


SIGNALS = {
    "current: min(triple confidences, complete)": lambda f: f["current"],
    "current x min P(O)": lambda f: f["current"] * f["o_min"],
    "min(current, min P(O))": lambda f: min(f["current"], f["o_min"]),
    "min(current, none_min) (doubt as a min)": lambda f: min(
        f["current"] / max(f["doubt"], 1e-12) * f["none_min"], 1.0
    ),
    "min(current', none_min, min P(O))": lambda f: min(
        f["current"] / max(f["doubt"], 1e-12) * f["none_min"], f["o_min"], 1.0
    ),
    "product of triple confidences x complete": lambda f: f["triples_product"],
    "min tag margin": lambda f: f["tag_margin_min"],
    "min(current, tag margin, relation margin)": lambda f: min(
        f["current"], f["tag_margin_min"], f["rel_margin_min"]
    ),
    "current x count max": lambda f: f["current"] * f["count_max"],
}


def auroc(scores: list[float], right: list[bool]) -> float:
    positives = [s for s, r in zip(scores, right, strict=True) if r]
    negatives = [s for s, r in zip(scores, right, strict=True) if not r]
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(np.asarray(positives + negatives), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.asarray(positives + negatives)[order]
    i = 0
    while i < len(values):  # average ranks of ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float(
        (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2)
        / (len(positives) * len(negatives))
    )


def choose(scores: list[float], right: list[bool], target: float = 0.95, z: float = 1.645):
    """The product's rule: the lowest threshold whose accepted answers reach the target."""
    ranked = sorted(zip(scores, right, strict=True), key=lambda item: -item[0])
    best, good = None, 0
    for count, (score, ok) in enumerate(ranked, start=1):
        good += ok
        if (count == len(ranked) or ranked[count][0] < score) and reaches(good, count, target, z):
            best = score
    return best


def deliver(scores: list[float], right: list[bool], threshold: float | None) -> str:
    if threshold is None:
        return "no threshold"
    accepted = [ok for score, ok in zip(scores, right, strict=True) if score >= threshold]
    if not accepted:
        return "answers none"
    low, high = wilson_interval(sum(accepted), len(accepted))
    share = len(accepted) / len(scores)
    rate = sum(accepted) / len(accepted)
    return f"{share:6.1%} alone at {rate:6.1%} ({low:.1%}-{high:.1%})"


def fitted_logistic(train: list[Labelled], names: list[str]):
    """A logistic regression over log features, fitted by Newton's method (no sklearn here)."""

    def matrix(readings: list[Labelled]) -> np.ndarray:
        rows = [[math.log(max(r.features[n], 1e-9)) for n in names] for r in readings]
        return np.hstack([np.ones((len(rows), 1)), np.asarray(rows)])

    x, y = matrix(train), np.asarray([r.right for r in train], dtype=float)
    weights = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ weights))
        gradient = x.T @ (y - p) - 1e-2 * weights
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-2 * np.eye(len(weights))
        weights += np.linalg.solve(hessian, gradient)
    return lambda readings: list(1 / (1 + np.exp(-matrix(readings) @ weights)))


def isotonic(points: list[tuple[float, bool]]):
    """Pool adjacent violators: confidence -> the agreement of its block, a step function."""
    blocks: list[list[float]] = []  # highest confidence, agreed, count
    for confidence, right in sorted(points):
        blocks.append([confidence, float(right), 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            top = blocks.pop()
            blocks[-1] = [top[0], blocks[-1][1] + top[1], blocks[-1][2] + top[2]]

    def mapped(confidence: float) -> float:
        block = next((b for b in blocks if confidence <= b[0]), blocks[-1])
        return block[1] / block[2]

    return mapped


def calibration_errors(tuned: list[Labelled], devs: list[Labelled]) -> None:
    """ECE of the served confidence, and of an isotonic map fitted on tune (whole, or one half
    measured on the other, as a young version's eval split would be)."""
    tune = [(r.features["current"], r.right) for r in tuned]
    dev = [(r.features["current"], r.right) for r in devs]

    def ece(points: list[tuple[float, bool]]) -> float:
        return expected_calibration_error([c for c, _ in points], [r for _, r in points]) or 0.0

    half = len(tune) // 2
    first, second = isotonic(tune[:half]), isotonic(tune[half:])
    out_of_fold = [(second(c), r) for c, r in tune[:half]] + [(first(c), r) for c, r in tune[half:]]
    whole = isotonic(tune)
    print(
        f"ECE (10 bins) of the served confidence: tune {ece(tune):.4f}, dev {ece(dev):.4f}; "
        f"isotonic fitted on all of tune: dev {ece([(whole(c), r) for c, r in dev]):.4f}; "
        f"fitted on one half of tune, measured on the other: {ece(out_of_fold):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--category", default="Food")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--keep", type=Path, help="train once into this folder, reuse after")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/valence-base-models"))
    args = parser.parse_args()

    def records(name: str) -> list[dict]:
        rows = [row for _, row in read_jsonl(DATA / name)]
        return [r for r in rows if r.get("category") == args.category]

    train_rows = records("train.jsonl")
    fit = [r for r in train_rows if not held_out_fold(r)]
    fit_texts = {text_key(r["text"]) for r in fit}
    fit_sets = {triple_set_key(parse_triples(r["triples"])) for r in fit}

    def unseen(rows: list[dict], texts: set, sets: set) -> list[dict]:
        return [
            r
            for r in rows
            if text_key(r["text"]) not in texts
            and triple_set_key(parse_triples(r["triples"])) not in sets
        ]

    tune = unseen([r for r in train_rows if held_out_fold(r)], fit_texts, fit_sets)
    all_texts = {text_key(r["text"]) for r in train_rows}
    all_sets = {triple_set_key(parse_triples(r["triples"])) for r in train_rows}
    dev = unseen(records("dev.jsonl"), all_texts, all_sets)
    print(f"fit {len(fit)} texts · tune {len(tune)} · dev {len(dev)} ({args.category})")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="encoder-confidence-"))
    artifact = folder / "encoder"
    if not (artifact / "encoder.json").is_file():
        from training.base_models import resolve_base_model
        from training.trainers.encoder import EncoderConfig, train_encoder

        base = resolve_base_model("all-minilm-l6-v2", args.model_dir)
        examples = [(r["text"], parse_triples(r["triples"])) for r in fit]
        result = train_encoder(base, examples, folder, EncoderConfig(epochs=args.epochs))
        print(f"trained {result.steps} steps in {result.seconds:.0f} s")
    student = EncoderStudent(artifact)

    def readings(rows: list[dict]) -> list[Labelled]:
        groups: dict[str, list] = {}
        for r in rows:  # every reference of the same text counts (WebNLG has a few)
            groups.setdefault(text_key(r["text"]), []).append(parse_triples(r["triples"]))
        return [read(student, r["text"], groups[text_key(r["text"])]) for r in rows]

    tuned, devs = readings(tune), readings(dev)
    for name, rows in (("tune", tuned), ("dev", devs)):
        print(f"{name}: {sum(r.right for r in rows) / len(rows):.1%} exactly right")
    results = {}
    print(f"{'signal':48} {'AUROC tune':>10} {'AUROC dev':>9}  threshold  on tune -> on dev")
    for name, signal in SIGNALS.items():
        scores_t = [signal(r.features) for r in tuned]
        scores_d = [signal(r.features) for r in devs]
        right_t, right_d = [r.right for r in tuned], [r.right for r in devs]
        threshold = choose(scores_t, right_t)
        line = (
            f"{name:48} {auroc(scores_t, right_t):10.3f} {auroc(scores_d, right_d):9.3f}  "
            f"{threshold if threshold is None else round(threshold, 4)!s:>9}  "
            f"{deliver(scores_t, right_t, threshold)} -> {deliver(scores_d, right_d, threshold)}"
        )
        print(line)
        results[name] = line
    calibration_errors(tuned, devs)
    names = ["current", "o_min", "tag_margin_min", "rel_margin_min", "none_min", "count_max"]
    half = len(tuned) // 2
    first, second = fitted_logistic(tuned[:half], names), fitted_logistic(tuned[half:], names)
    out_of_fold = second(tuned[:half]) + first(tuned[half:])
    right_t, right_d = [r.right for r in tuned], [r.right for r in devs]
    threshold = choose(out_of_fold, right_t)
    model = fitted_logistic(tuned, names)
    scores_d = model(devs)
    print(
        f"{'logistic over log features (cross-fitted)':48} {auroc(out_of_fold, right_t):10.3f} "
        f"{auroc(scores_d, right_d):9.3f}  {threshold}  {deliver(out_of_fold, right_t, threshold)}"
        f" -> {deliver(scores_d, right_d, threshold)}"
    )
    (folder / "readings.json").write_text(
        json.dumps(
            {
                "tune": [[r.right, r.features] for r in tuned],
                "dev": [[r.right, r.features] for r in devs],
            }
        )
    )


if __name__ == "__main__":
    main()
