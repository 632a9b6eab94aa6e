"""What every trainer shares: progress reports, cancellation and the bf16 check (Django-free)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

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


class StepLoop:
    """The bookkeeping every trainer's loop shares: cancel checks, the smoothed loss, progress
    reports, and stopping at the step count or the time budget (keeping the model).

        loop = StepLoop(total_steps, started=..., max_seconds=..., on_progress=..., ...)
        for batch in loop.batches(lambda: make_batches()):  # epochs until done
            ...one optimiser step...
            loop.record(loss_value)
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

    def batches(self, epoch: Callable[[], Iterable[T]]) -> Iterator[T]:
        while not self.finished and self.step < self.total_steps:
            for batch in epoch():
                if self.should_stop is not None and self.should_stop():
                    raise Cancelled(f"cancelled at step {self.step} of {self.total_steps}")
                yield batch
                if self.finished:
                    return

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


def seeded_device(seed: int) -> str:
    """Seed Python and torch; pick CUDA when present, else use every CPU core."""
    random.seed(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    return device
