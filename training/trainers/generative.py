"""LoRA fine-tuning of a small causal LM on (prompt, target) pairs (Django-free).

One adapter per direction: each direction has its own registry entry, threshold and
lifecycle, so they are trained, gated and rolled back independently. The adapter is merged
into the base weights at the end, because the fast runtimes (onnxruntime-genai, MLX) serve a
plain model, not base + adapter.

The loss covers only the target tokens (and the end-of-sequence token that teaches the model to
stop); prompts are masked. Batches are grouped by length and padded per batch (dynamic
padding), which on a CPU is worth about 2x over padding everything to the longest example.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from training.trainers.common import (
    Cancelled,
    Progress,
    StepLoop,
    bf16_supported,
    start_training,
    torch_update,
)

__all__ = ["Cancelled", "Progress", "TrainConfig", "TrainResult", "train_lora"]

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 2.0
    max_steps: int = 0  # 0: no cap; otherwise stop after this many optimiser steps
    min_steps: int = 0  # train at least this long however small the data
    max_seconds: float = 0.0  # 0: no budget; otherwise stop (and keep the model) after this long
    batch_size: int = 8
    learning_rate: float = 1e-3
    # "lora": adapters on the attention and MLP projections, merged at the end; "full": every
    # weight trains (needs a far smaller learning rate, about 5e-5, and 3x the memory).
    method: str = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_layers: int = 0  # 0: every layer; N: only the top N (a shorter backward pass)
    bf16: bool = True  # autocast where the hardware does bf16 (AVX-512 BF16, AMX, CUDA)
    max_length: int = 256
    warmup_ratio: float = 0.05
    seed: int = 0

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    merged_dir: Path
    steps: int
    examples: int
    skipped_too_long: int
    final_loss: float
    seconds: float
    device: str

    @classmethod
    def of(
        cls,
        loop: StepLoop,
        merged_dir: Path,
        examples: int,
        skipped: int,
        started: float,
        device: str,
    ) -> TrainResult:
        return cls(
            merged_dir=merged_dir,
            steps=loop.step,
            examples=examples,
            skipped_too_long=skipped,
            final_loss=loop.final_loss,
            seconds=time.perf_counter() - started,
            device=device,
        )


def train_lora(
    base_model: str | Path,
    examples: Sequence[tuple[str, str]],
    out_dir: Path,
    config: TrainConfig = TrainConfig(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune, merge, and save a plain HF model folder at out_dir/"merged"."""
    if config.method not in ("lora", "full"):
        raise ValueError(f"unknown fine-tuning method {config.method!r} (lora or full)")
    started, device = start_training(examples, config.seed)

    tokenizer = padded_tokenizer(base_model)
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    # transformers' @wraps(nn.Module.to) hides the bound method's signature from mypy.
    model.to(device)  # type: ignore[arg-type]

    encoded, skipped = encode_examples(tokenizer, examples, config.max_length)
    loop = StepLoop.planned(
        len(encoded), config, started=started, on_progress=on_progress, should_stop=should_stop
    )
    total_steps = loop.total_steps

    trained: Any = model if config.method == "full" else _with_lora(model, config)
    autocast = config.bf16 and bf16_supported(device)
    optimiser = torch.optim.AdamW(
        [p for p in trained.parameters() if p.requires_grad], lr=config.learning_rate
    )
    schedule = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]  # unannotated
        optimiser, int(total_steps * config.warmup_ratio), total_steps
    )

    trained.train()
    rng = random.Random(config.seed)

    def step(batch: dict[str, torch.Tensor]) -> float:
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = trained(**batch).loss
        return torch_update(loss, trained, optimiser, schedule)

    loop.run(lambda: length_grouped_batches(encoded, config.batch_size, tokenizer, rng), step)

    merged_dir = out_dir / "merged"
    merged = trained if config.method == "full" else trained.merge_and_unload()
    merged.eval()
    # peft declares nn.Module; unloading a causal-LM LoRA gives back the transformers model.
    cast(PreTrainedModel, merged).save_pretrained(merged_dir, safe_serialization=True)
    tokenizer.save_pretrained(merged_dir)
    return TrainResult.of(loop, merged_dir, len(encoded), skipped, started, device)


def _with_lora(model: PreTrainedModel, config: TrainConfig) -> Any:
    """Adapters on every projection the model has (of LORA_TARGETS), in its top layers."""
    targets = [
        name for name in LORA_TARGETS if any(n.endswith(name) for n, _ in model.named_modules())
    ]
    layers = model.config.num_hidden_layers
    top = min(config.lora_layers, layers) if config.lora_layers else layers
    return get_peft_model(
        model,
        LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            layers_to_transform=list(range(layers - top, layers)),
        ),
    )


def padded_tokenizer(base_model: str | Path) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, padding with EOS where it names no pad token."""
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[tuple[str, str]], max_length: int
) -> tuple[list[tuple[list[int], int]], int]:
    """(token ids, prompt length) per example, and how many were too long. Prompt and target
    are tokenised apart, exactly as at inference time, where the model continues the tokenised
    prompt. Raises when no example fits."""
    encoded, skipped = [], 0
    for prompt, target in examples:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        ids = prompt_ids + target_ids + [tokenizer.eos_token_id]
        if len(ids) > max_length:
            skipped += 1
            continue
        encoded.append((ids, len(prompt_ids)))
    if not encoded:
        raise ValueError(f"every example is longer than max_length={max_length} tokens")
    return encoded, skipped


def length_grouped_batches(
    encoded: list[tuple[list[int], int]],
    batch_size: int,
    tokenizer: PreTrainedTokenizerBase,
    rng: random.Random,
) -> Iterator[dict[str, torch.Tensor]]:
    """Length-grouped, shuffled batches, each padded to its own longest example; the loss
    covers the target tokens only (labels -100 elsewhere)."""
    pad_id = tokenizer.pad_token_id
    order = list(range(len(encoded)))
    rng.shuffle(order)
    pool = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(encoded[i][0]))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    for indices in batches:
        width = max(len(encoded[i][0]) for i in indices)
        input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
        labels = torch.full((len(indices), width), -100, dtype=torch.long)
        attention = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            ids, prompt_len = encoded[i]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
            attention[row, : len(ids)] = 1
        yield {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
