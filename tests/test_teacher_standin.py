"""The teacher stand-in of `bench-api`: the project's real SDK code path against it, on loopback.

No test here starts gunicorn or reaches any address but 127.0.0.1, and none bounds a duration
from above (the machine may be busy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command

from boundary import cascade
from boundary.directions import DECOMPOSITION
from boundary.pricing import DEFAULT_PRICES, PriceTable
from boundary.teacher import AnthropicTeacher, TeacherUnavailable
from boundary.triples import Triple, triples_to_json
from training.api_bench import ScratchServer
from training.management.commands.bench_api import (
    NO_TEACHER_NOTE,
    describe_configuration,
    format_report,
    served_by_line,
)
from training.teacher_standin import (
    TeacherStandIn,
    guess_triples,
    is_loopback_url,
    parse_latency_range,
    references_from_records,
    texts_from_records,
)

TEXT = "The leader of Aarhus is Jacob Bundsgaard."
REFERENCE = [["Aarhus", "leader", "Jacob_Bundsgaard"], ["Aarhus", "country", "Denmark"]]
FAST = (0.0, 10.0)


@pytest.fixture(autouse=True)
def _no_proxy(no_proxy) -> None:
    """Every test here reaches the stand-in on loopback (see conftest.no_proxy)."""


@pytest.fixture
def standin() -> Iterator[TeacherStandIn]:
    with TeacherStandIn(references={TEXT: REFERENCE}, latency_ms=FAST, seed=1) as running:
        yield running


def teacher_for(standin: TeacherStandIn, **overrides) -> AnthropicTeacher:
    options = {
        "api_key": standin.api_key,
        "base_url": standin.base_url,
        "decomposition_model": "claude-haiku-4-5",
        "recomposition_model": "claude-haiku-4-5",
        "prices": PriceTable(DEFAULT_PRICES),
        "max_retries": 0,
        **overrides,
    }
    return AnthropicTeacher(**options)


# --- the stand-in answers the real SDK ----------------------------------------------------------


@pytest.mark.django_db
def test_the_cascade_gets_the_reference_triples_through_the_sdk_base_url(
    standin, settings, monkeypatch
):
    # What a gunicorn worker of bench-api does: the key from settings, the URL from the SDK's env.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", standin.base_url)
    settings.ANTHROPIC_API_KEY = standin.api_key
    call = cascade.decompose(f"  {TEXT} ")  # whitespace does not defeat the reference lookup
    assert call.served_by == "teacher"
    assert [list(row.values()) for row in call.output] == REFERENCE
    assert call.input_tokens > 313 and call.output_tokens > 20
    assert call.cost_usd > 0
    assert standin.stats()["requests"] == 1


def test_the_usage_is_what_the_project_estimates_for_the_same_exchange(standin):
    teacher = teacher_for(standin)
    result = teacher.decompose(TEXT)
    assert result.output == [Triple(*row) for row in REFERENCE]
    answer = json.dumps({"triples": triples_to_json(result.output)})
    expected = teacher.estimate_usage(DECOMPOSITION, len(TEXT), len(answer))
    assert (result.usage.input_tokens, result.usage.output_tokens) == expected
    assert result.usage.model == "claude-haiku-4-5"
    stats = standin.stats()
    assert (stats["input_tokens"], stats["output_tokens"]) == expected


def test_an_unknown_sentence_gets_one_plausible_valid_triple(standin):
    result = teacher_for(standin).decompose("Alan Bean, born in Wheeler, was a test pilot.")
    assert result.output == [Triple("Alan Bean", "bornIn", "Wheeler")]
    assert result.usage.output_tokens > 0


def test_a_recomposition_gets_text(standin):
    result = teacher_for(standin).recompose([Triple("Aarhus", "leaderName", "Jacob_Bundsgaard")])
    assert result.output == "Aarhus leader name Jacob Bundsgaard."
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


def test_a_recomposition_of_a_known_triple_set_gets_its_reference_text():
    texts = texts_from_records([{"text": TEXT, "triples": REFERENCE}])
    with TeacherStandIn(texts=texts, latency_ms=FAST) as running:
        # Another order and naming style of the same set is the same set.
        triples = [
            Triple("Aarhus", "country", "Denmark"),
            Triple("Aarhus", "leader", "Jacob Bundsgaard"),
        ]
        assert teacher_for(running).recompose(triples).output == TEXT


def test_a_fallible_teacher_gets_a_decomposition_wrong_and_counts_it():
    with TeacherStandIn(
        references={TEXT: REFERENCE}, latency_ms=FAST, error_rate=1.0, seed=2
    ) as running:
        result = teacher_for(running).decompose(TEXT)
        assert result.output != [Triple(*row) for row in REFERENCE]
        assert running.stats()["wrong_on_purpose"] == 1


def test_a_fallible_teacher_answers_a_recomposition_with_another_entrys_text():
    records = [{"text": TEXT, "triples": REFERENCE}, {"text": "B c.", "triples": [["B", "p", "C"]]}]
    with TeacherStandIn(
        texts=texts_from_records(records), latency_ms=FAST, error_rate=1.0, seed=2
    ) as running:
        assert teacher_for(running).recompose([Triple("B", "p", "C")]).output == TEXT


def test_a_teacher_without_errors_counts_none(standin):
    teacher_for(standin).decompose(TEXT)
    assert standin.stats()["wrong_on_purpose"] == 0


def test_an_error_rate_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="error_rate"):
        TeacherStandIn(error_rate=1.5)


def test_a_wrong_key_is_refused_like_the_api_does(standin):
    with pytest.raises(TeacherUnavailable) as refused:
        teacher_for(standin, api_key="sk-ant-wrong").decompose(TEXT)
    assert (refused.value.code, refused.value.status_code) == ("authentication_failed", 401)
    assert standin.stats()["errors"] == 1
    assert standin.stats()["requests"] == 0


def test_a_malformed_request_gets_an_api_error_body(standin):
    port = int(standin.base_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"x-api-key": standin.api_key, "content-type": "application/json"}
    try:
        connection.request("POST", "/v1/messages", json.dumps({"model": "m"}), headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 400
        assert body["error"]["type"] == "invalid_request_error"
        connection.request("POST", "/v1/complete", "{}", headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 404
    finally:
        connection.close()


def test_the_latency_is_drawn_from_the_range_and_waited_for():
    with TeacherStandIn(latency_ms=(40.0, 50.0), seed=3) as slow:
        draws = [slow.draw_latency_s() for _ in range(200)]
        assert all(0.040 <= draw <= 0.050 for draw in draws)
        assert len(set(draws)) > 1  # drawn, not fixed
        started = time.perf_counter()
        teacher_for(slow).decompose(TEXT)
        assert time.perf_counter() - started >= 0.040  # a lower bound only


def test_the_standin_stops_listening_and_closes_open_connections():
    standin = TeacherStandIn(latency_ms=FAST)
    with standin:
        port = int(standin.base_url.rsplit(":", 1)[1])
        teacher_for(standin).decompose(TEXT)
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        idle.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.recv(12).startswith(b"HTTP/1.1 404")
    try:
        assert not standin.running
        idle.settimeout(10)
        while chunk := idle.recv(4096):  # the rest of the 404, then end of file
            assert b"HTTP/1.1" not in chunk
    finally:
        idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    with pytest.raises(RuntimeError, match="not running"):
        standin.base_url  # noqa: B018


# --- pieces of the stand-in ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500,1500", (500.0, 1500.0)), ("0, 10", (0.0, 10.0)), ("800", (800.0, 800.0))],
)
def test_a_latency_range_is_min_comma_max_milliseconds(value, expected):
    assert parse_latency_range(value) == expected


@pytest.mark.parametrize("value", ["fast", "10,5", "-1,5", "1,2,3", "nan", "5,inf", ""])
def test_a_bad_latency_range_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_latency_range(value)


def test_references_come_from_webnlg_records_first_one_wins():
    records = [
        {"text": "A  b.", "triples": [["A", "p", "B"]]},
        {"text": "A b.", "triples": [["A", "q", "C"]]},
        {"text": "No triples.", "triples": []},
        {"text": "Bad rows.", "triples": ["abc", ["x", "y"]]},
        {"triples": [["no", "text", "here"]]},
    ]
    assert references_from_records(records) == {"A b.": [["A", "p", "B"]]}


def test_a_guess_needs_words():
    assert guess_triples("...") == []
    assert guess_triples("Aarhus") == [
        {"subject": "Aarhus", "predicate": "mentions", "object": "Aarhus"}
    ]


# --- wiring into bench-api ----------------------------------------------------------------------


def test_the_scratch_server_hands_the_standin_to_gunicorn_and_nothing_else(standin, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-a-real-key")
    with_teacher = ScratchServer(workers=1, threads=1, encoder_threads=1, teacher=standin)
    without = ScratchServer(workers=1, threads=1, encoder_threads=1)
    try:
        env = with_teacher.environment
        assert env["ANTHROPIC_API_KEY"] == standin.api_key
        assert env["ANTHROPIC_BASE_URL"] == standin.base_url
        assert is_loopback_url(env["ANTHROPIC_BASE_URL"])
        assert env["NO_PROXY"].startswith("127.0.0.1,")
        assert without.environment["ANTHROPIC_API_KEY"] == ""
        assert "ANTHROPIC_BASE_URL" not in without.environment
    finally:
        with_teacher.close()
        without.close()


def test_a_teacher_off_loopback_is_refused():
    elsewhere = SimpleNamespace(base_url="http://10.0.0.1:8080", api_key="k")
    with pytest.raises(ValueError, match="loopback"):
        ScratchServer(workers=1, threads=1, encoder_threads=1, teacher=elsewhere)
    assert is_loopback_url("http://[::1]:1234") and is_loopback_url("http://localhost:1")
    assert not is_loopback_url("http://127.0.0.1.example.com:1")


def test_the_latency_option_needs_the_standin():
    with pytest.raises(CommandError, match="needs --teacher-standin"):
        call_command("bench_api", "--teacher-latency-ms", "0,10")


class _FakeDecompose(BaseHTTPRequestHandler):
    """/api/v1/decompose answering student, degraded, student, ... (gunicorn's stand-in)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    answers = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            type(self).answers += 1
            served_by = "degraded" if type(self).answers % 2 == 0 else "student"
        stage = {"stage": "encoder", "version": 1, "confidence": 0.5}
        body = {"served_by": served_by, "triples": [{"subject": "a", "source": stage}]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass


def test_latency_and_throughput_count_answers_by_served_by():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeDecompose)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bench = ScratchServer(workers=1, threads=1, encoder_threads=1)
    bench.port = server.server_address[1]
    try:
        latency = bench.latency(["one", "two"], runs=2)
        assert latency.served_by == {"student": 2, "degraded": 2}
        assert sum(stage["count"] for stage in latency.stages.values()) == 4
        load = bench.throughput(["one", "two"], seconds=0.3, concurrency=2)
        assert load.completed > 0
        assert sum(load.served_by.values()) == load.completed
        assert set(load.served_by) <= {"student", "degraded"}
    finally:
        bench.close()
        server.shutdown()
        server.server_close()


# --- the report ---------------------------------------------------------------------------------


def _report(teacher: dict) -> dict:
    latency = {
        "requests": 5,
        "p50_ms": 9.0,
        "p95_ms": 12.0,
        "mean_ms": 9.5,
        "errors": 0,
        "stages": {"student/encoder": {"count": 3, "p50_ms": 8.0, "p95_ms": 9.0}},
        "served_by": {"student": 3, "degraded": 2},
    }
    load = {
        "seconds": 10.0,
        "concurrency": 8,
        "completed": 100,
        "errors": 1,
        "requests_per_s": 10.0,
        "p50_ms": 9.0,
        "p95_ms": 20.0,
        "status_codes": {200: 100, 503: 1},
        "served_by": {"student": 60, "teacher": 40},
    }
    report = {
        "encoder": 7,
        "encoder_latency": latency,
        "encoder_throughput": load,
        "stored_calls": 106,
        "teacher": teacher,
        "configuration": "teacher none; sqlite",
    }
    return report


def test_the_report_says_unsure_requests_came_back_degraded_without_a_teacher():
    text = format_report(_report({"kind": "none", "note": NO_TEACHER_NOTE}))
    assert text.splitlines()[0] == "configuration: teacher none; sqlite"
    assert "  served by: 3 student, 0 teacher, 2 degraded" in text
    assert f"note: {NO_TEACHER_NOTE} (0 of 100 throughput answers)" in text


def test_the_report_counts_the_standins_calls_and_has_no_note_with_one():
    teacher = {
        "kind": "stand-in",
        "latency_ms": [500.0, 1500.0],
        "references": 12,
        "requests": 42,
        "errors": 0,
        "input_tokens": 28000,
        "output_tokens": 1800,
    }
    text = format_report(_report(teacher))
    assert "  served by: 60 student, 40 teacher, 0 degraded" in text
    assert "teacher stand-in: 42 calls answered" in text
    assert NO_TEACHER_NOTE not in text


def test_other_served_by_kinds_are_listed_after_the_three():
    assert served_by_line({"unserved": 1, "student": 2}) == (
        "served by: 2 student, 0 teacher, 0 degraded, 1 unserved"
    )


def test_the_configuration_line_names_the_teacher_and_the_setup():
    report = {
        "teacher": {"kind": "stand-in", "latency_ms": [500.0, 1500.0]},
        "database": "sqlite",
        "workers": 2,
        "threads": 2,
        "encoder_threads": 1,
        "cpus": 2,
        "concurrency": 8,
        "seconds": 10.0,
        "sentences": 30,
        "load_before": 1.5,
    }
    assert describe_configuration(report) == (
        "teacher stand-in (500-1500 ms a call); sqlite; gunicorn 2 workers x 2 threads "
        "(1 encoder threads) on 2 CPUs; 8 clients for 10 s; 30 sentences; load before 1.50; "
        "memory off"
    )
    report["teacher"] = {"kind": "none"}
    assert describe_configuration(report).startswith("teacher none; sqlite;")
