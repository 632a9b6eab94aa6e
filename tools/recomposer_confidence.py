"""Which confidence ranks a generative recomposer's right texts first? A measurement.

    VALENCE_DATA_DIR=... VALENCE_EVAL_MAX_PAIRS=400 .venv/bin/python \\
        tools/recomposer_confidence.py [--version N] [--limit 400]

Reads an install's newest generative recomposer (or --version) and its eval split (the pairs
the gate judges it on: never trained on), writes each text greedily with the version's own
runtime, and judges it as the product's evaluation does: the text mentions every entity and,
decomposed again by the active local decomposer, gives back exactly the input triples (the
round trip; that decomposer's own mistakes count against the recomposer). Then, for each
candidate signal computed from the token log-probabilities alone (none uses the judge), its
AUROC and what a threshold does when chosen on one half by the product's rule (the Wilson
lower bound at z 1.645 reaches 95 %) and measured on the other, both ways (cross-fitted).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")

import django  # noqa: E402

django.setup()

from boundary import prompts  # noqa: E402
from boundary.models import Direction, ModelKind, ModelVersion  # noqa: E402
from boundary.students import load_student  # noqa: E402
from tools.encoder_confidence import auroc, choose  # noqa: E402
from training.evaluation import Prediction, agrees, mentions_every_entity  # noqa: E402
from training.pipeline import (  # noqa: E402
    eval_split_pairs,
    examples_from_pairs,
    round_trip_decomposer,
)


def cross_fitted(scores: list[float], right: list[bool]) -> str:
    """Choose on each half, measure on the other; pooled."""
    half = len(scores) // 2
    answered = agreed = 0
    for chosen, measured in (
        (slice(0, half), slice(half, None)),
        (slice(half, None), slice(0, half)),
    ):
        threshold = choose(scores[chosen], right[chosen])
        if threshold is None:
            continue
        accepted = [
            ok for s, ok in zip(scores[measured], right[measured], strict=True) if s >= threshold
        ]
        answered += len(accepted)
        agreed += sum(accepted)
    if not answered:
        return "answers none held out"
    return f"{answered / len(scores):6.1%} alone at {agreed / answered:6.1%} ({agreed}/{answered})"


SIGNALS = {
    "served: geometric mean token probability": lambda lp, ok: math.exp(sum(lp) / len(lp)),
    "minimum token probability": lambda lp, ok: math.exp(min(lp)),
    "mean of the 3 lowest token probabilities": lambda lp, ok: (
        sum(math.exp(x) for x in sorted(lp)[:3]) / min(3, len(lp))
    ),
    "whole-text probability": lambda lp, ok: math.exp(sum(lp)),
    "minimum token probability, 0 unless every entity is mentioned": lambda lp, ok: (
        math.exp(min(lp)) if ok else 0.0
    ),
    "mean token probability, 0 unless every entity is mentioned": lambda lp, ok: (
        math.exp(sum(lp) / len(lp)) if ok else 0.0
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", type=int)
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()
    versions = ModelVersion.objects.filter(
        direction=Direction.RECOMPOSITION, kind=ModelKind.GENERATIVE
    )
    version = versions.get(pk=args.version) if args.version else versions.latest("pk")
    student = load_student(version.student_spec())
    decomposer, name = round_trip_decomposer(Direction.RECOMPOSITION)
    examples = examples_from_pairs(eval_split_pairs(Direction.RECOMPOSITION, ModelKind.GENERATIVE))
    examples = examples[: args.limit]
    print(
        f"v{version.pk} ({version.backend}) on {len(examples)} eval-split triple sets; judge {name}"
    )
    rows = []
    started = time.perf_counter()
    for example in examples:
        triples = list(example.source_triples)
        generation = student.generator.generate(  # type: ignore[attr-defined]
            prompts.recomposition_prompt(triples),
            student.max_new_tokens,  # type: ignore[attr-defined]
        )
        if not generation.complete or not generation.token_logprobs:
            rows.append(([-50.0], False, False))
            continue
        text = prompts.parse_recomposition(generation.text)
        right = agrees(Direction.RECOMPOSITION, Prediction(text, 0.0), example, decomposer)
        rows.append((generation.token_logprobs, mentions_every_entity(text, triples), right))
    seconds = time.perf_counter() - started
    right = [r for _, _, r in rows]
    print(
        f"{sum(right)} of {len(rows)} round-trip right ({sum(right) / len(rows):.1%}); "
        f"{seconds / len(rows):.2f} s a text"
    )
    print(f"{'signal':66} {'AUROC':>6}  cross-fitted at 95 %")
    for label, signal in SIGNALS.items():
        scores = [signal(lp, ok) for lp, ok, _ in rows]
        print(f"{label:66} {auroc(scores, right):6.3f}  {cross_fitted(scores, right)}")


if __name__ == "__main__":
    main()
