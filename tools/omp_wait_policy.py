"""Why `valence` sets OMP_WAIT_POLICY=PASSIVE: training steps with and without a busy core.

    .venv/bin/python tools/omp_wait_policy.py [--busy]

Times 20 optimiser steps of a MiniLM-sized stack of layers (batch 32 x 48 tokens) in a fresh
process per setting: OpenMP's default wait policy (spin), PASSIVE (sleep), and one thread. With
--busy, a CPU-bound process runs beside them in its own session, as another job would.
Measured on 2 cores (2026-12-04): quiet, spin 182 ms/step, passive 195, one thread 345;
busy, spin 792-831, passive 342-350, one thread 338-352.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

STEP = """
import time, torch
torch.manual_seed(0)
layers = [torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.Linear(1536, 384)] * 3
model, batch = torch.nn.Sequential(*layers), torch.randn(32 * 48, 384)
optimiser = torch.optim.AdamW(model.parameters())
def step():
    model(batch).sum().backward(); optimiser.step(); optimiser.zero_grad()
for _ in range(3):
    step()
started = time.perf_counter()
for _ in range(20):
    step()
print(f"{(time.perf_counter() - started) / 20 * 1000:.0f}")
"""

SETTINGS = {
    "spin (OpenMP default)": {"OMP_WAIT_POLICY": "ACTIVE"},
    "passive (valence)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="a CPU-bound process beside")
    busy = parser.parse_args().busy
    hog = (
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        if busy
        else None
    )
    try:
        print(f"{'busy' if busy else 'quiet'}, {os.cpu_count()} CPUs")
        for name, environment in SETTINGS.items():
            clean = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
            result = subprocess.run(
                [sys.executable, "-c", STEP],
                env={**clean, **environment},
                capture_output=True,
                text=True,
                check=True,
                start_new_session=True,
            )
            print(f"{name:24} {result.stdout.strip():>6} ms/step")
    finally:
        if hog is not None:
            hog.kill()


if __name__ == "__main__":
    main()
