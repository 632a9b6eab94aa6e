"""What every generative runtime shares: the result type, the protocol and two small helpers.

A module of its own so that the runtimes (generation.py, mlx_backend.py) and the loaders import
it rather than each other: no runtime needs to know another exists (Django-free).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from boundary.students import BackendUnavailable

__all__ = ["Generation", "Generator", "existing_dir", "greedy_decode", "token_logprob"]


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


def greedy_decode(
    feed: Callable[[Sequence[int]], np.ndarray],
    prompt_ids: Sequence[int],
    *,
    eos_token_ids: Collection[int],
    max_new_tokens: int,
) -> tuple[list[int], list[float], bool]:
    """The one greedy loop every runtime runs: (tokens, their log-probabilities, complete).

    `feed(ids)` appends ids to the runtime's sequence (the prompt first, then one chosen token at
    a time, reusing its KV cache) and returns the logits of the last position. The loop stops at
    an end-of-sequence token (complete) or after max_new_tokens (not complete), and never feeds
    a token it will not read the logits of.
    """
    tokens: list[int] = []
    logprobs: list[float] = []
    if max_new_tokens <= 0:
        return tokens, logprobs, False
    logits = feed(prompt_ids)
    while True:
        token = int(logits.argmax())
        if token in eos_token_ids:
            return tokens, logprobs, True
        tokens.append(token)
        logprobs.append(token_logprob(logits, token))
        if len(tokens) >= max_new_tokens:
            return tokens, logprobs, False
        logits = feed([token])


def existing_dir(path: str | Path) -> Path:
    """The model folder, or BackendUnavailable: a missing artefact must not look like a bug."""
    folder = Path(path)
    if not folder.is_dir():
        raise BackendUnavailable(f"no model folder at {folder}")
    return folder
