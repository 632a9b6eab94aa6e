"""The scaffold every trainer shares (training/trainers/common.py): the step plan and loop."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from training.trainers.common import Cancelled, StepLoop, planned_steps, start_training


@dataclass(frozen=True)
class Plan:
    epochs: float = 1.0
    batch_size: int = 4
    max_steps: int = 0
    min_steps: int = 0
    max_seconds: float = 0.0


def test_a_plan_covers_the_epochs_counting_a_partial_batch():
    assert planned_steps(10, batch_size=4, epochs=2) == 6


def test_a_fraction_of_an_epoch_rounds_up():
    assert planned_steps(10, batch_size=4, epochs=0.5) == 2


def test_small_data_trains_at_least_min_steps():
    assert planned_steps(10, batch_size=4, epochs=3, min_steps=50) == 50


def test_max_steps_caps_even_min_steps():
    assert planned_steps(10, batch_size=4, epochs=3, min_steps=50, max_steps=20) == 20


def test_a_loop_runs_epochs_until_its_planned_steps():
    epochs = []

    def epoch():
        epochs.append(1)
        return [1, 2, 3]

    loop = StepLoop.planned(3, Plan(min_steps=7), started=time.perf_counter())
    loop.run(epoch, lambda batch: float(batch))
    assert (loop.step, len(epochs)) == (7, 3)


def test_a_loop_reports_progress_each_step():
    seen = []
    loop = StepLoop(2, started=time.perf_counter(), on_progress=seen.append)
    loop.run(lambda: [1.0, 1.0], lambda batch: batch)
    assert [p.step for p in seen] == [1, 2]


def test_a_stop_request_cancels_before_the_next_step():
    loop = StepLoop(5, started=time.perf_counter(), should_stop=lambda: True)
    with pytest.raises(Cancelled):
        loop.run(lambda: [1.0], lambda batch: batch)
    assert loop.step == 0


def test_a_time_budget_ends_the_loop_and_keeps_what_was_trained():
    loop = StepLoop(100, started=time.perf_counter() - 10, max_seconds=1.0)
    loop.run(lambda: [1.0], lambda batch: batch)
    assert (loop.step, loop.total_steps, loop.finished) == (1, 1, True)


def test_training_without_examples_is_refused():
    with pytest.raises(ValueError, match="no training examples"):
        start_training([], seed=0)
