"""Do the encoder and the generative decomposer agree where they are right? (query by committee)

    VALENCE_DATA_DIR=... .venv/bin/python tools/committee_check.py --encoder 1 --generative 4 \
        [--data training/corpus/handwritten_check.jsonl]

Without --data, the examples are the stored eval split (held out from both students' training:
the split groups by triple set). For each text it asks both versions, and counts how often each
is exactly right (normalised triple set) and how often the two give the same triple set, and
how many of those agreed answers are right: if agreement is nearly always right, it is a
confidence signal that needs no threshold (neural caching's query by committee). A generative
answer that does not parse counts as wrong and as a disagreement.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "valence_site.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=int, required=True)
    parser.add_argument("--generative", type=int, required=True)
    parser.add_argument("--data", type=Path, help="WebNLG-style JSONL (default: the eval split)")
    arguments = parser.parse_args()

    import django

    django.setup()
    from boundary.models import ModelVersion
    from boundary.students import load_student
    from boundary.triples import Triple, same_triples
    from training.datasets import eligible_pairs, split_pairs
    from training.evaluation import wilson_interval

    encoder = load_student(ModelVersion.objects.get(pk=arguments.encoder).student_spec())
    generative = load_student(ModelVersion.objects.get(pk=arguments.generative).student_spec())
    if arguments.data:
        records = [json.loads(line) for line in arguments.data.open() if line.strip()]
        examples = [(r["text"], [Triple(*t) for t in r["triples"]]) for r in records]
        source = str(arguments.data)
    else:
        pairs = split_pairs(eligible_pairs("decomposition")).evaluation
        examples = [(str(p.source), list(p.target)) for p in pairs]
        source = "the stored eval split"
    counts = {"encoder right": 0, "generative right": 0, "agreed": 0, "agreed and right": 0}
    for text, reference in examples:
        first = encoder.decompose(text).output
        try:
            second = generative.decompose(text).output
        except Exception:  # an unparsable answer: wrong, and no agreement
            second = None
        counts["encoder right"] += same_triples(first, reference)
        counts["generative right"] += second is not None and same_triples(second, reference)
        if second is not None and same_triples(first, second):
            counts["agreed"] += 1
            counts["agreed and right"] += same_triples(first, reference)
    total, agreed = len(examples), counts["agreed"]
    print(
        f"v{arguments.encoder} (encoder) and v{arguments.generative} (generative) on {total} "
        f"examples of {source}"
    )
    for name, value in counts.items():
        print(f"  {name:18} {value:5} ({value / total:.1%} of all)")
    if agreed:
        interval = wilson_interval(counts["agreed and right"], agreed)
        low, high = interval if interval else (0.0, 1.0)
        print(
            f"  agreed answers right: {counts['agreed and right'] / agreed:.1%} "
            f"(95 % interval {low:.1%}-{high:.1%})"
        )


if __name__ == "__main__":
    main()
