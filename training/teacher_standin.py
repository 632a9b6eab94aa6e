"""A stand-in for Anthropic's Messages API on loopback, so that `bench-api` can include a teacher.

Without a teacher every request the local model is unsure of comes back `degraded` at once,
which flatters throughput: in production those requests wait a second or so for the LLM while
holding a server thread. The stand-in answers the project's real SDK calls (`boundary.teacher`
through the `anthropic` SDK) the way the API does: a `record_triples` tool call (the reference
triples when it knows the sentence), token usage derived from the prompt and the answer, after a
latency drawn uniformly from a range. It binds 127.0.0.1 only; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from boundary.fingerprint import triple_set_key
from boundary.teacher import (
    CHARS_PER_TOKEN,
    TOOL_NAME,
    TOOL_USE_OUTPUT_OVERHEAD_TOKENS,
    TOOL_USE_SYSTEM_PROMPT_TOKENS,
)
from boundary.triples import DEFAULT_LIMITS, Triple, from_linear

DEFAULT_LATENCY_MS = (500.0, 1500.0)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# A keep-alive connection idle this long is closed: an abandoned one must not hold a thread.
IDLE_CONNECTION_S = 30.0

_RELATIVE = {"who", "which", "that", "whose"}
_PREPOSITIONS = {"in", "at", "on", "of", "from", "to", "for", "by", "with", "since", "as"}
# The API's default limit: a longer field would fail the teacher's validation.
_FIELD_CHARS = DEFAULT_LIMITS.max_field_chars


def parse_latency_range(value: str) -> tuple[float, float]:
    """`"500,1500"` -> (500.0, 1500.0) milliseconds; `"800"` is a fixed 800 ms (argparse type)."""
    parts = [part.strip() for part in value.split(",")]
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not MIN,MAX milliseconds") from None
    if len(numbers) == 1:
        numbers *= 2
    if len(numbers) != 2 or not all(math.isfinite(n) for n in numbers):
        raise argparse.ArgumentTypeError(f"{value!r} is not MIN,MAX milliseconds")
    low, high = numbers
    if low < 0 or high < low:
        raise argparse.ArgumentTypeError(f"{value!r}: need 0 <= MIN <= MAX")
    return low, high


def is_loopback_url(url: str) -> bool:
    """Only these may be handed to a server as its Anthropic base URL in a benchmark."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS


def references_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, list[list[str]]]:
    """Text -> reference triples from WebNLG-style records ("text", "triples"); first one wins."""
    references: dict[str, list[list[str]]] = {}
    for record in records:
        text, triples = record.get("text"), record.get("triples")
        if not isinstance(text, str) or not isinstance(triples, list):
            continue
        rows = [
            [str(field) for field in row]
            for row in triples
            if isinstance(row, list | tuple) and len(row) == 3
        ]
        if rows:
            references.setdefault(_key(text), rows)
    return references


def texts_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Triple set (its matching key) -> the first text written for it: recomposition answers."""
    texts: dict[str, str] = {}
    for record in records:
        text, triples = record.get("text"), record.get("triples")
        if not isinstance(text, str) or not isinstance(triples, list):
            continue
        rows = [
            Triple(*map(str, row)) for row in triples if isinstance(row, list) and len(row) == 3
        ]
        if rows:
            texts.setdefault(triple_set_key(rows), text)
    return texts


def guess_triples(text: str) -> list[dict[str, str]]:
    """One plausible triple for a sentence nobody has a reference for: the leading capitalised
    words as subject, the next verb (with its preposition) as predicate, the rest of that clause
    as object. Plausible, not right: it only has to look like a teacher's answer."""
    words = list(re.finditer(r"[^\W_][\w'’-]*", text))
    if not words:
        return []
    count = 0
    while count < len(words) and (
        words[count].group()[0].isupper() or words[count].group()[0].isdigit()
    ):
        count += 1
    count = max(count, 1)
    subject = " ".join(word.group() for word in words[:count])
    index = count
    while index < len(words) and words[index].group().lower() in _RELATIVE:
        index += 1
    if index >= len(words):
        return [_row(subject, "mentions", text.strip())]
    predicate = words[index].group().lower()
    if index + 1 < len(words) and words[index + 1].group().lower() in _PREPOSITIONS:
        index += 1
        predicate += words[index].group().capitalize()
    rest = text[words[index].end() :]
    # The object runs to the end of the clause, or else takes the next few words.
    phrase = re.split(r"[,;:.!?]", rest, maxsplit=1)[0].split() or re.findall(r"[\w'’-]+", rest)
    return [_row(subject, predicate, " ".join(phrase[:6]) or subject)]


def _row(subject: str, predicate: str, obj: str) -> dict[str, str]:
    return {
        "subject": subject[:_FIELD_CHARS],
        "predicate": predicate[:_FIELD_CHARS],
        "object": obj[:_FIELD_CHARS],
    }


def _key(text: str) -> str:
    return " ".join(text.split())


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _text(content: Any) -> str:
    """A message's or a system prompt's text: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


class TeacherStandIn:
    """The Messages API (`POST /v1/messages`) on 127.0.0.1, in a daemon thread.

    Use it as a context manager: it listens on a free port from `__enter__` until `__exit__`.
    Requests are answered concurrently, one thread each, like the real API; each waits a
    latency drawn uniformly from `latency_ms` before its answer.

    `references` (text -> triples) answer decompositions and `texts` (triple set key -> text)
    answer recompositions; what it has no reference for gets a plausible guess. With
    `error_rate` it is a fallible teacher: that share of answers is wrong on purpose (a triple
    dropped or its object swapped; another entry's text), seeded, so a student that learns from
    it can be seen to learn the mistakes too.
    """

    def __init__(
        self,
        *,
        references: Mapping[str, Sequence[Sequence[str]]] | None = None,
        texts: Mapping[str, str] | None = None,
        latency_ms: tuple[float, float] = DEFAULT_LATENCY_MS,
        error_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        low, high = latency_ms
        if low < 0 or high < low:
            raise ValueError("latency_ms must be (min, max) with 0 <= min <= max")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        self.error_rate = error_rate
        self.texts = dict(texts or {})
        self.latency_ms = (float(low), float(high))
        self.references = {
            _key(text): [list(row) for row in rows] for text, rows in (references or {}).items()
        }
        self.api_key = f"sk-ant-standin-{secrets.token_urlsafe(16)}"
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts = {
            "requests": 0,
            "errors": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "wrong_on_purpose": 0,
        }
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):  # typeshed allows bytes; an AF_INET server has a str
            host = host.decode()
        return f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="teacher-standin",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops listening and closes the connections still open (idle keep-alive ones)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> TeacherStandIn:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        """Answered requests, refused ones, and the tokens it billed: proof the teacher ran."""
        with self._lock:
            return dict(self._counts)

    # --- answers ------------------------------------------------------------------------------

    def draw_latency_s(self) -> float:
        low, high = self.latency_ms
        with self._lock:
            return self._random.uniform(low, high) / 1000

    def answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The Messages API response to a well-formed request body."""
        system = _text(request.get("system"))
        user = next(
            (
                _text(message.get("content"))
                for message in reversed(request["messages"])
                if isinstance(message, dict) and message.get("role") == "user"
            ),
            "",
        )
        tools = request.get("tools") or []
        if any(isinstance(tool, dict) and tool.get("name") == TOOL_NAME for tool in tools):
            tool_input = {"triples": self._triples(user)}
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_standin_{secrets.token_hex(12)}",
                    "name": TOOL_NAME,
                    "input": tool_input,
                }
            ]
            stop_reason = "tool_use"
            prompt_chars = len(system) + len(json.dumps(tools)) + len(user)
            input_tokens = _tokens(prompt_chars) + TOOL_USE_SYSTEM_PROMPT_TOKENS
            output_tokens = _tokens(len(json.dumps(tool_input))) + TOOL_USE_OUTPUT_OVERHEAD_TOKENS
        else:
            answer = self._text(user)
            content = [{"type": "text", "text": answer}]
            stop_reason = "end_turn"
            input_tokens = _tokens(len(system) + len(user))
            output_tokens = _tokens(len(answer))
        with self._lock:
            self._counts["requests"] += 1
            self._counts["input_tokens"] += input_tokens
            self._counts["output_tokens"] += output_tokens
        return {
            "id": f"msg_standin_{secrets.token_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def _triples(self, text: str) -> list[dict[str, str]]:
        reference = self.references.get(_key(text))
        if reference is None:
            return guess_triples(text)
        rows = [_row(*row) for row in reference]
        if not self._errs():
            return rows
        with self._lock:
            if len(rows) > 1 and self._random.random() < 0.5:
                rows.pop(self._random.randrange(len(rows)))
            else:
                others = [row[2] for rows_ in self.references.values() for row in rows_]
                victim = rows[self._random.randrange(len(rows))]
                victim["object"] = self._random.choice(others)[:_FIELD_CHARS]
        return rows

    def _text(self, linear: str) -> str:
        try:
            key = triple_set_key(from_linear(linear))
        except ValueError:  # LinearFormatError and TripleValidationError are ValueErrors
            key = ""
        text = self.texts.get(key)
        if text is None:
            return _sentences_from_linear(linear) or "Understood."
        if self._errs() and len(self.texts) > 1:
            with self._lock:
                text = self._random.choice([t for t in self.texts.values() if t != text])
        return text

    def _errs(self) -> bool:
        """Whether this answer is one of the deliberately wrong ones (and count it)."""
        if not self.error_rate:
            return False
        with self._lock:
            wrong = self._random.random() < self.error_rate
            self._counts["wrong_on_purpose"] += wrong
        return wrong

    def _refused(self) -> None:
        with self._lock:
            self._counts["errors"] += 1


def _sentences_from_linear(text: str) -> str:
    """Recomposition: "subject | predicate | object" lines as one plain sentence each."""
    sentences = []
    for line in text.splitlines():
        fields = [field.strip().replace("_", " ") for field in line.split("|")]
        if len(fields) == 3 and all(fields):
            predicate = re.sub(r"(?<!^)(?=[A-Z])", " ", fields[1]).lower()
            sentences.append(f"{fields[0]} {predicate} {fields[2]}.")
    return " ".join(sentences)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, standin: TeacherStandIn) -> None:
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Ends every open connection: each handler thread then sees EOF and returns."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    timeout = IDLE_CONNECTION_S
    # Headers and body leave in two writes; with Nagle's algorithm the second waits for a
    # delayed ACK (40 ms on Linux), which would add to every answer's latency.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        standin = self.server.standin
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path != "/v1/messages":
            self._error(HTTPStatus.NOT_FOUND, "not_found_error", f"no route {self.path}")
            return
        # The key arrives as x-api-key or (anthropic 2.x) as a bearer token.
        bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        key = self.headers.get("x-api-key") or bearer
        if not secrets.compare_digest(key.encode(), standin.api_key.encode()):
            self._error(HTTPStatus.UNAUTHORIZED, "authentication_error", "invalid API key")
            return
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("model"), str)
            or not isinstance(body.get("max_tokens"), int)
            or not isinstance(body.get("messages"), list)
            or not body["messages"]
        ):
            self._error(
                HTTPStatus.BAD_REQUEST,
                "invalid_request_error",
                "model, max_tokens and a non-empty messages list are required",
            )
            return
        time.sleep(standin.draw_latency_s())
        self._send(HTTPStatus.OK, standin.answer(body))

    def do_GET(self) -> None:  # noqa: N802
        self._error(HTTPStatus.NOT_FOUND, "not_found_error", f"no route {self.path}")

    def _error(self, status: HTTPStatus, kind: str, message: str) -> None:
        self.server.standin._refused()
        self._send(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_standin_{secrets.token_hex(8)}")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: one line per request would drown the benchmark's output."""
