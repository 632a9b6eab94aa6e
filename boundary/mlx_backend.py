"""The MLX backend (Apple Silicon): greedy decoding through mlx_lm (Django-free).

Same contract as the other generative runtimes (boundary/runtime.py): a plain, merged HF
folder in, greedy decoding with the log-probability of each chosen token out. Training on MLX
lives with the other trainers (training/trainers/mlx.py) and writes such a folder, so
transformers can serve an MLX-trained version as a fallback and MLX can serve one trained by
torch. mlx is imported inside the functions: this module imports anywhere, and
on Linux `pip install "mlx[cpu]" mlx-lm` is enough to run it (slowly) in tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from boundary.runtime import Generation, existing_dir, greedy_decode
from boundary.students import BackendUnavailable

__all__ = ["MLXGenerator", "rope_overrides"]


class MLXGenerator:
    """A merged HF folder through mlx_lm, in the dtype its weights are stored in (float32 for
    the folders our trainers write), greedy with a KV cache."""

    def __init__(self, model_dir: str | Path) -> None:
        try:
            import mlx_lm
        except ImportError as exc:
            raise BackendUnavailable(f"mlx_lm is not installed ({exc})") from exc

        self.model_dir = existing_dir(model_dir)
        # load() is typed as returning a 2- or 3-tuple (the third only with return_config=True).
        loaded = mlx_lm.load(str(self.model_dir), model_config=rope_overrides(self.model_dir))
        self._model, self._tokenizer = loaded[0], loaded[1]
        # generation_config.json's EOS (else config.json's) plus the tokenizer's: what
        # TransformersGenerator stops at too.
        self.eos_token_ids = frozenset(int(t) for t in self._tokenizer.eos_token_ids)
        if not self.eos_token_ids:
            raise BackendUnavailable("the model names no end-of-sequence token")

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        # mlx_lm's TokenizerWrapper is not callable, and its own generate() adds a BOS token;
        # encode() is the HF tokenizer's, so this matches tokenizer(prompt, add_special_tokens=
        # False) in the trainer.
        ids = self._tokenizer.encode(prompt, add_special_tokens=False)
        cache = make_prompt_cache(self._model)

        def feed(new_ids: Sequence[int]) -> np.ndarray:
            logits = self._model(mx.array([list(new_ids)]), cache=cache)[0, -1]
            return np.array(logits.astype(mx.float32))

        tokens, logprobs, complete = greedy_decode(
            feed, ids, eos_token_ids=self.eos_token_ids, max_new_tokens=max_new_tokens
        )
        text = self._tokenizer.decode(tokens, skip_special_tokens=False)
        return Generation(text=text, token_logprobs=logprobs, complete=complete)


def rope_overrides(model_path: str | Path) -> dict[str, Any]:
    """transformers 5 writes rope_theta under "rope_parameters"; mlx_lm 0.32's Llama reads only
    the top-level key and would silently fall back to 10000 (SmolLM2 uses 100000)."""
    config_file = Path(model_path) / "config.json"
    if not config_file.is_file():  # a hub id: mlx_lm downloads it, and reads what it gets
        return {}
    config = json.loads(config_file.read_text())
    rope = config.get("rope_parameters")
    if "rope_theta" in config or not isinstance(rope, dict) or "rope_theta" not in rope:
        return {}
    overrides: dict[str, Any] = {"rope_theta": rope["rope_theta"]}
    if rope.get("rope_type", "default") != "default":
        overrides["rope_scaling"] = rope
    return overrides
