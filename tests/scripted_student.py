"""A local-model backend whose answers a test scripts: the cascade's view of a student.

Real backends (transformers, ONNX, MLX) arrive with the training issue; this one implements the
same protocol so the cascade's decisions can be tested without training anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from boundary.students import StudentAnswer, StudentSpec
from boundary.triples import Triple


@dataclass
class ScriptedStudent:
    triples: list[Triple] = field(default_factory=list)
    text: str = "Chris prefers composable architectures."
    confidence: float = 0.9
    error: Exception | None = None
    calls: int = 0
    # Set both to act like the encoder, which scores each triple and its own completeness.
    triple_confidences: tuple[float, ...] | None = None
    complete: float | None = None

    def decompose(self, text: str) -> StudentAnswer:
        return self._answer(self.triples)

    def recompose(self, triples: Sequence[Triple]) -> StudentAnswer:
        return self._answer(self.text)

    def _answer(self, output: list[Triple] | str) -> StudentAnswer:
        self.calls += 1
        if self.error is not None:
            raise self.error
        per_triple = self.triple_confidences if isinstance(output, list) else None
        return StudentAnswer(
            output=output,
            confidence=self.confidence,
            triple_confidences=per_triple,
            complete=self.complete if per_triple is not None else None,
        )


class ScriptedLoader:
    """Maps version ids to scripted students; counts loads to check the per-process cache."""

    def __init__(self) -> None:
        self.students: dict[int, ScriptedStudent] = {}
        self.loads = 0

    def __call__(self, spec: StudentSpec) -> ScriptedStudent:
        self.loads += 1
        return self.students[spec.version_id]
