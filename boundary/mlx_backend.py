"""The MLX backend (Apple Silicon): greedy decoding and LoRA training through mlx_lm (Django-free).

Same contract as the other generative runtimes (boundary/generation.py): a plain, merged HF
folder in, greedy decoding with the log-probability of each chosen token out; training writes
such a folder, so transformers can serve an MLX-trained version as a fallback and MLX can serve
one trained by torch. mlx is imported inside the functions: this module imports anywhere, and
on Linux `pip install "mlx[cpu]" mlx-lm` is enough to run it (slowly) in tests.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from boundary.generation import Generation, _existing_dir, _logprob
from boundary.students import BackendUnavailable

if TYPE_CHECKING:  # the trainer module imports torch and peft: seconds a serving process skips
    from training.trainers.generative import Progress, TrainConfig, TrainResult

__all__ = ["MLXGenerator", "train_lora_mlx"]


class MLXGenerator:
    """A merged HF folder through mlx_lm, in the dtype its weights are stored in (float32 for
    the folders our trainers write), greedy with a KV cache."""

    def __init__(self, model_dir: str | Path) -> None:
        try:
            import mlx_lm
        except ImportError as exc:
            raise BackendUnavailable(f"mlx_lm is not installed ({exc})") from exc

        self.model_dir = _existing_dir(model_dir)
        self._model, self._tokenizer = mlx_lm.load(
            str(self.model_dir), model_config=_rope_overrides(self.model_dir)
        )
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
        inputs = mx.array([ids])
        tokens: list[int] = []
        logprobs: list[float] = []
        complete = False
        while len(tokens) < max_new_tokens:
            logits = np.array(self._model(inputs, cache=cache)[0, -1].astype(mx.float32))
            token = int(logits.argmax())
            if token in self.eos_token_ids:
                complete = True
                break
            tokens.append(token)
            logprobs.append(_logprob(logits, token))
            inputs = mx.array([[token]])
        text = self._tokenizer.decode(tokens, skip_special_tokens=False)
        return Generation(text=text, token_logprobs=logprobs, complete=complete)


def _rope_overrides(model_path: str | Path) -> dict[str, Any]:
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


def train_lora_mlx(
    base_model: str | Path,
    examples: Sequence[tuple[str, str]],
    out_dir: Path,
    config: TrainConfig | None = None,  # None: TrainConfig()
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """train_lora's twin on MLX: fine-tune, fuse, and save a plain HF folder at out_dir/"merged".

    The data side is the torch trainer's own code (_encode, _batches): the same tokenisation,
    length-grouped shuffled batches and prompt masking, so both backends learn the same thing.
    `bf16` is ignored: MLX trains in the dtype of the base weights.
    """
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_unflatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load, save
    from transformers import AutoTokenizer

    from training.trainers.common import StepLoop
    from training.trainers.generative import (
        LORA_TARGETS,
        TrainConfig,
        TrainResult,
        _batches,
        _encode,
    )

    config = config or TrainConfig()
    if not examples:
        raise ValueError("no training examples")
    started = time.perf_counter()
    mx.random.seed(config.seed)  # the LoRA A matrices and dropout

    model, _, model_config = load(
        str(base_model), model_config=_rope_overrides(base_model), return_config=True
    )
    # The torch trainer's tokenizer, not mlx_lm's wrapper (which _encode cannot call).
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    encoded, skipped = _encode(tokenizer, examples, config.max_length)
    if not encoded:
        raise ValueError(f"every example is longer than max_length={config.max_length} tokens")
    total_steps = max(1, math.ceil(config.epochs * math.ceil(len(encoded) / config.batch_size)))
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    model.freeze()
    layers = len(model.layers)
    keys = {
        name for name, _ in model.layers[0].named_modules() if name.split(".")[-1] in LORA_TARGETS
    }
    linear_to_lora_layers(
        model,
        min(config.lora_layers, layers) if config.lora_layers else layers,
        {
            "rank": config.lora_rank,
            "scale": config.lora_alpha / config.lora_rank,  # peft's scaling; mlx_lm takes it as is
            "dropout": config.lora_dropout,
            "keys": keys,
        },
    )
    # get_linear_schedule_with_warmup; mlx's AdamW skips bias correction unless asked.
    warmup = int(total_steps * config.warmup_ratio)
    decay = optim.linear_schedule(config.learning_rate, 0.0, max(1, total_steps - warmup))
    schedule = (
        optim.join_schedules(
            [optim.linear_schedule(0.0, config.learning_rate, warmup), decay], [warmup]
        )
        if warmup
        else decay
    )
    optimiser = optim.AdamW(learning_rate=schedule, bias_correction=True)

    def loss_fn(model: nn.Module, inputs: mx.array, labels: mx.array) -> mx.array:
        mask = labels != -100
        losses = nn.losses.cross_entropy(model(inputs), mx.where(mask, labels, 0))
        return (losses * mask).astype(mx.float32).sum() / mask.sum()

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    model.train()
    rng = random.Random(config.seed)
    loop = StepLoop(
        total_steps,
        started=started,
        max_seconds=config.max_seconds,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    for batch in loop.batches(
        lambda: _batches(encoded, config.batch_size, tokenizer.pad_token_id, rng)
    ):
        # Shifted as in transformers' causal-LM loss: position t predicts token t + 1.
        inputs = mx.array(batch["input_ids"][:, :-1].numpy())
        labels = mx.array(batch["labels"][:, 1:].numpy())
        loss, grads = loss_and_grad(model, inputs, labels)
        grads, _ = optim.clip_grad_norm(grads, 1.0)
        optimiser.update(model, grads)
        mx.eval(model.trainable_parameters(), optimiser.state, loss)
        loop.record(loss.item())

    fused = [(name, m.fuse()) for name, m in model.named_modules() if hasattr(m, "fuse")]
    model.update_modules(tree_unflatten(fused))
    merged_dir = out_dir / "merged"
    # Weights (safetensors), config.json, the tokenizer and generation_config.json; also a
    # model card (README.md) naming the library "mlx".
    save(merged_dir, str(base_model), model, tokenizer, model_config, donate_model=False)
    return TrainResult(
        merged_dir=merged_dir,
        steps=loop.step,
        examples=len(encoded),
        skipped_too_long=skipped,
        final_loss=loop.final_loss,
        seconds=time.perf_counter() - started,
        device=f"mlx-{mx.default_device().type.name}",
    )
