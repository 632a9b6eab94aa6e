"""The trainer scaffold (Django-free): what the encoder, LoRA and MLX trainers share.

Seeding and device choice, the step plan, the step loop (cancellation, smoothed loss, progress
reports, the time budget) and the torch optimiser update. A trainer brings only what is its
own: its data, its model and its loss.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    step: int
    total_steps: int
    loss: float
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        if not self.step:
            return 0.0
        return self.elapsed_s / self.step * (self.total_steps - self.step)


class Cancelled(Exception):
    """should_stop() asked the trainer to stop; nothing is saved."""


def bf16_supported(device: str) -> bool:
    """bf16 autocast only pays where the hardware has bf16 units (AVX-512 BF16/AMX, CUDA)."""
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(
        # torch leaves mkldnn.is_available unannotated
        torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


class StepPlan(Protocol):
    """What a trainer's config says about how long to train (TrainConfig, EncoderConfig)."""

    @property
    def epochs(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def min_steps(self) -> int: ...
    @property
    def max_seconds(self) -> float: ...


def start_training(examples: Sized, seed: int) -> tuple[float, str]:
    """(start time, device) for a trainer's call: refuses no data, seeds, picks the device."""
    if not len(examples):
        raise ValueError("no training examples")
    return time.perf_counter(), seeded_device(seed)


class StepLoop:
    """The bookkeeping every trainer's loop shares: cancel checks, the smoothed loss, progress
    reports, and stopping at the step count or the time budget (keeping the model).

        loop = StepLoop.planned(len(encoded), config, started=..., on_progress=..., ...)
        loop.run(lambda: make_batches(), one_step)  # epochs until done; one_step returns the loss
    """

    def __init__(
        self,
        total_steps: int,
        *,
        started: float,
        max_seconds: float = 0.0,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.total_steps = total_steps
        self.started = started
        self.max_seconds = max_seconds
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.step = 0
        self.last_loss = float("nan")
        self.smoothed: float | None = None
        self.finished = False

    @classmethod
    def planned(
        cls,
        examples: int,
        plan: StepPlan,
        *,
        started: float,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> StepLoop:
        """A loop over the plan's epochs of `examples`, within its step cap and time budget."""
        total_steps = planned_steps(
            examples,
            batch_size=plan.batch_size,
            epochs=plan.epochs,
            max_steps=plan.max_steps,
            min_steps=plan.min_steps,
        )
        return cls(
            total_steps,
            started=started,
            max_seconds=plan.max_seconds,
            on_progress=on_progress,
            should_stop=should_stop,
        )

    def batches(self, epoch: Callable[[], Iterable[T]]) -> Iterator[T]:
        while not self.finished and self.step < self.total_steps:
            for batch in epoch():
                if self.should_stop is not None and self.should_stop():
                    raise Cancelled(f"cancelled at step {self.step} of {self.total_steps}")
                yield batch
                if self.finished:
                    return

    def run(self, epoch: Callable[[], Iterable[T]], step: Callable[[T], float]) -> StepLoop:
        """Run `step` on batches from `epoch` (called again for each new epoch) until done."""
        for batch in self.batches(epoch):
            self.record(step(batch))
        return self

    def record(self, loss: float) -> None:
        self.step += 1
        self.last_loss = loss
        self.smoothed = loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * loss
        elapsed = time.perf_counter() - self.started
        if self.on_progress is not None:
            self.on_progress(Progress(self.step, self.total_steps, self.smoothed, elapsed))
        if self.step >= self.total_steps or (self.max_seconds and elapsed >= self.max_seconds):
            self.total_steps = self.step
            self.finished = True

    @property
    def final_loss(self) -> float:
        return self.smoothed if self.smoothed is not None else self.last_loss


def planned_steps(
    examples: int, *, batch_size: int, epochs: float, max_steps: int = 0, min_steps: int = 0
) -> int:
    """Optimiser steps for `epochs` passes over the data (a fraction counts), raised to
    min_steps (small datasets need more passes), then capped at max_steps when that is set."""
    total = max(1, min_steps, math.ceil(epochs * math.ceil(examples / batch_size)))
    return min(total, max_steps) if max_steps else total


def torch_update(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> float:
    """One optimiser step, gradients clipped at norm 1.0; returns the loss as a float."""
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves backward unannotated
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()
    schedule.step()
    optimiser.zero_grad(set_to_none=True)
    return float(loss.detach())


def seeded_device(seed: int) -> str:
    """Seed Python and torch; pick CUDA when present, else use every CPU core."""
    random.seed(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    return device
