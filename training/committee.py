"""Query by committee: a generative decomposer answers where it agrees with the encoder.

The two students fail on different inputs. On the offline corpus's held-out texts, a 100-step
LoRA decomposer and the encoder gave the same triple set on 64 of 178, and 63 of those were
right, where neither student's own confidence could promise the 95 % target at all
(tools/committee_check.py). Agreement needs no threshold, so there is nothing to choose and
nothing to overfit: what it delivers is measured once, on the eval split that neither student
trained on, and a version may answer by agreement only when that measurement shows the target
on at least VALENCE_COMMITTEE_MIN_AGREED (50) agreed answers. The cascade (boundary/cascade.py)
then serves an answer the two gave alike, and the gate (boundary/registry.py) accepts such a
version even when its own confidence is uncalibrated.

Why 50: on Food, 25 agreed eval answers were all right (95 % interval 86.7-100 %), and on the
455 held-out dev texts the same two students' agreed answers were right 92.0 % of the time
(127 of 138): inside that interval, below the target. Ten agreed answers, the first floor,
let that committee serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from boundary.models import committee_shows_target
from boundary.students import StudentBackend
from boundary.triples import same_triples
from training.evaluation import Example, Prediction, wilson_interval


def committee_promise(
    predictions: Sequence[Prediction],
    examples: Sequence[Example],
    partner: StudentBackend,
    partner_id: int,
    target: float,
) -> dict[str, Any]:
    """How often `predictions` (a generative decomposer's, on `examples`) agree with
    `partner`'s answers to the same texts, and how often an agreed answer is right."""
    agreed = right = 0
    for prediction, example in zip(predictions, examples, strict=True):
        if prediction.output is None:
            continue
        try:
            other = partner.decompose(str(example.source)).output
        except Exception:  # a failing partner agrees with nothing
            continue
        if not isinstance(other, list) or not same_triples(prediction.output, other):
            continue
        agreed += 1
        right += any(same_triples(other, reference) for reference in example.references)
    agreement = right / agreed if agreed else None
    return {
        "partner": partner_id,
        "examples": len(examples),
        "agreed": agreed,
        "right": right,
        "agreement": agreement,
        "agreement_interval": wilson_interval(right, agreed),
        "target": target,
    }


def describe_committee(promise: dict[str, Any]) -> str:
    if not promise:
        return ""
    if not promise["agreed"]:
        return f"never agreed with v{promise['partner']} on {promise['examples']} eval examples"
    low, high = promise["agreement_interval"]
    shown = committee_shows_target(promise)
    verdict = "answers where they agree" if shown else "not enough to answer"
    return (
        f"agreed with v{promise['partner']} on {promise['agreed']} of {promise['examples']} eval "
        f"examples, {promise['agreement']:.1%} of them right (95 % interval {low:.1%}-{high:.1%}): "
        f"{verdict}"
    )
