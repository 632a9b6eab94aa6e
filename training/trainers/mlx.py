"""LoRA training through mlx_lm (Apple Silicon; `pip install "mlx[cpu]" mlx-lm` elsewhere).

The MLX twin of training/trainers/generative.py: same data code, same result, a plain merged
HF folder that any generative runtime serves (see boundary/mlx_backend.py for serving).
mlx is imported inside the function, so this module imports anywhere.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from boundary.mlx_backend import rope_overrides
from training.trainers.common import StepLoop, start_training
from training.trainers.generative import (
    LORA_TARGETS,
    Progress,
    TrainConfig,
    TrainResult,
    encode_examples,
    length_grouped_batches,
    padded_tokenizer,
)

__all__ = ["train_lora_mlx"]


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

    The data side is the torch trainer's own code (encode_examples, length_grouped_batches):
    the same tokenisation, length-grouped shuffled batches and prompt masking, so both backends
    learn the same thing.
    `bf16` is ignored: MLX trains in the dtype of the base weights.
    """
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.nn.layers.base import Module
    from mlx.nn.utils import value_and_grad
    from mlx.utils import tree_unflatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load, save

    config = config or TrainConfig()
    if config.method != "lora":
        raise ValueError("the MLX trainer trains LoRA adapters only")
    started, _ = start_training(examples, config.seed)  # the torch side: tokenisation only
    mx.random.seed(config.seed)  # the LoRA A matrices and dropout

    loaded = load(str(base_model), model_config=rope_overrides(base_model), return_config=True)
    if len(loaded) != 3:  # return_config=True: (model, tokenizer, config)
        raise TypeError("mlx_lm.load returned no config")
    model, _, model_config = loaded
    # The torch trainer's tokenizer, not mlx_lm's wrapper (which encode_examples cannot call).
    tokenizer = padded_tokenizer(base_model)
    encoded, skipped = encode_examples(tokenizer, examples, config.max_length)
    loop = StepLoop.planned(
        len(encoded), config, started=started, on_progress=on_progress, should_stop=should_stop
    )
    total_steps = loop.total_steps

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

    def loss_fn(model: Module, inputs: mx.array, labels: mx.array) -> mx.array:
        mask = labels != -100
        losses = nn.losses.cross_entropy(model(inputs), mx.where(mask, labels, 0))
        return (losses * mask).astype(mx.float32).sum() / mask.sum()

    loss_and_grad = value_and_grad(model, loss_fn)
    model.train()
    rng = random.Random(config.seed)

    def step(batch: dict[str, Any]) -> float:
        # Shifted as in transformers' causal-LM loss: position t predicts token t + 1.
        inputs = mx.array(batch["input_ids"][:, :-1].numpy())
        labels = mx.array(batch["labels"][:, 1:].numpy())
        loss, grads = loss_and_grad(model, inputs, labels)
        grads, _ = optim.clip_grad_norm(grads, 1.0)  # type: ignore[no-untyped-call]  # unannotated
        optimiser.update(model, grads)
        mx.eval(model.trainable_parameters(), optimiser.state, loss)
        return float(loss.item())

    loop.run(lambda: length_grouped_batches(encoded, config.batch_size, tokenizer, rng), step)

    fused = [(name, m.fuse()) for name, m in model.named_modules() if hasattr(m, "fuse")]
    model.update_modules(tree_unflatten(fused))
    merged_dir = out_dir / "merged"
    # Weights (safetensors), config.json, the tokenizer and generation_config.json; also a
    # model card (README.md) naming the library "mlx".
    # save() only calls tokenizer.save_pretrained, which the HF tokenizer has as well.
    save(merged_dir, str(base_model), model, tokenizer, model_config, donate_model=False)  # type: ignore[arg-type]
    device = f"mlx-{mx.default_device().type.name}"
    return TrainResult.of(loop, merged_dir, len(encoded), skipped, started, device)
