"""The one greedy loop every generative runtime shares (boundary/runtime.greedy_decode)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from boundary.runtime import greedy_decode, token_logprob

EOS = 0


class ScriptedLogits:
    """Emits a fixed token sequence as one-hot-ish logits and records what it was fed."""

    def __init__(self, script: list[int], vocab: int = 5) -> None:
        self.script = script
        self.vocab = vocab
        self.fed: list[list[int]] = []

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        self.fed.append(list(ids))
        logits = np.zeros(self.vocab, dtype=np.float32)
        logits[self.script[len(self.fed) - 1]] = 3.0
        return logits


def test_feeds_the_prompt_once_then_each_chosen_token():
    feed = ScriptedLogits([2, 3, EOS])
    greedy_decode(feed, [7, 8, 9], eos_token_ids={EOS}, max_new_tokens=10)
    assert feed.fed == [[7, 8, 9], [2], [3]]


def test_stops_at_eos_complete_and_leaves_it_out():
    tokens, logprobs, complete = greedy_decode(
        ScriptedLogits([2, 3, EOS]), [1], eos_token_ids={EOS}, max_new_tokens=10
    )
    assert (tokens, complete) == ([2, 3], True)
    assert len(logprobs) == 2


def test_stops_at_max_new_tokens_incomplete_without_feeding_the_last_token():
    feed = ScriptedLogits([2, 3, 4, EOS])
    tokens, _, complete = greedy_decode(feed, [1], eos_token_ids={EOS}, max_new_tokens=2)
    assert (tokens, complete) == ([2, 3], False)
    assert feed.fed == [[1], [2]]


def test_reports_each_tokens_log_softmax():
    feed = ScriptedLogits([4, EOS])
    _, logprobs, _ = greedy_decode(feed, [1], eos_token_ids={EOS}, max_new_tokens=5)
    expected = np.zeros(5, dtype=np.float32)
    expected[4] = 3.0
    assert logprobs == pytest.approx([token_logprob(expected, 4)])


def test_no_budget_decodes_nothing():
    feed = ScriptedLogits([2])
    assert greedy_decode(feed, [1], eos_token_ids={EOS}, max_new_tokens=0) == ([], [], False)
    assert feed.fed == []
