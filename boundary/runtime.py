"""What every generative runtime shares: the result type, the protocol and two small helpers.

A module of its own so that the runtimes (generation.py, mlx_backend.py) and the loaders import
it rather than each other: no runtime needs to know another exists (Django-free).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from boundary.students import BackendUnavailable

__all__ = ["Generation", "Generator", "existing_dir", "token_logprob"]


@dataclass(frozen=True)
class Generation:
    text: str
    token_logprobs: list[float]  # of each generated token (greedy); the EOS token is excluded
    complete: bool = True  # False when max_new_tokens ran out before the EOS token


class Generator(Protocol):
    def generate(self, prompt: str, max_new_tokens: int) -> Generation: ...


def token_logprob(logits: np.ndarray, token: int) -> float:
    """log-softmax(logits)[token] in float64, so every runtime rounds alike."""
    values = logits.astype(np.float64, copy=False)
    peak = values.max()
    return float(values[token] - peak - np.log(np.exp(values - peak).sum()))


def existing_dir(path: str | Path) -> Path:
    """The model folder, or BackendUnavailable: a missing artefact must not look like a bug."""
    folder = Path(path)
    if not folder.is_dir():
        raise BackendUnavailable(f"no model folder at {folder}")
    return folder
