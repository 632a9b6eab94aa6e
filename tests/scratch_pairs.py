"""Teacher answers stored in a scratch service (its `manage shell`), for tests that train there."""

from __future__ import annotations

# Eight decompositions, one in four in the eval split: enough for a tiny model to train on.
STORE_PAIRS = """
from boundary.models import BoundaryCall
for n in range(8):
    BoundaryCall.objects.create(
        direction="decomposition", input=f"Person {n} uses Vim.", input_hash=f"h{n}",
        output=[{"subject": f"Person {n}", "predicate": "uses", "object": "Vim"}],
        served_by="teacher", split="eval" if n % 4 == 0 else "train", latency_ms=800.0,
    )
"""
