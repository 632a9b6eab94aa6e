"""What every trainer shares: progress reports, cancellation and the bf16 check (Django-free)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
        return torch.cuda.is_bf16_supported()
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
