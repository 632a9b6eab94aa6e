"""Fifty clients against a teacher that takes a second: every request answered and stored.

gunicorn really runs (2 gthread workers x 32 threads, on loopback, over a scratch SQLite
database, so fifty concurrent inserts contend for one file), and the real SDK calls the
stand-in Messages API. Nothing here bounds a duration from above: the figures are asserted on
counts, never on speed (`bench-api --teacher-standin` measures speed).
"""

from __future__ import annotations

import pytest

from training.api_bench import ScratchServer
from training.teacher_standin import TeacherStandIn

CLIENTS = 50


@pytest.fixture(autouse=True)
def _no_proxy(no_proxy) -> None:
    """Every test here reaches the stand-in on loopback (see conftest.no_proxy)."""


@pytest.fixture(scope="module")
def slow_teacher_load():
    sentences = [f"Person {n} prefers composable architectures." for n in range(500)]
    with TeacherStandIn(latency_ms=(1000.0, 1000.0), seed=0) as teacher:
        server = ScratchServer(
            workers=2,
            threads=32,
            encoder_threads=1,
            teacher=teacher,
            environment={"VALENCE_MEMORY": "off"},  # every call is the LLM's, repeats included
        )
        try:
            server.prepare([])  # no local model: every call waits for the teacher
            server.start()
            load = server.throughput(sentences, seconds=3.0, concurrency=CLIENTS)
            stored = server.stored_calls()
            answered = teacher.stats()
        finally:
            server.close()
    return load, stored, answered


def test_every_client_request_gets_the_teachers_answer(slow_teacher_load):
    load, _, _ = slow_teacher_load
    assert load.status_codes == {200: load.completed}
    assert load.completed >= CLIENTS  # each client finished at least one call
    assert load.served_by == {"teacher": load.completed}


def test_every_acknowledged_call_is_stored_once(slow_teacher_load):
    load, stored, _ = slow_teacher_load
    assert stored == load.completed


def test_the_teacher_was_asked_once_per_call(slow_teacher_load):
    load, _, answered = slow_teacher_load
    assert (answered["requests"], answered["errors"]) == (load.completed, 0)
