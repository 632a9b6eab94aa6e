"""The teacher: Anthropic's Messages API at the text <-> triples boundary.

One class, ``AnthropicTeacher``, returns a ``TeacherResult`` (output, usage, cost, latency) or
raises a typed ``TeacherError``; no exception of the SDK ever reaches the caller. Decomposition
forces a ``record_triples`` tool call whose input is validated by ``boundary.triples``;
recomposition asks for plain text.

Retries and timeouts are the SDK's own: ``max_retries`` bounded retries with exponential backoff
(0.5 s doubling to at most 8 s, with jitter) that honour ``retry-after-ms`` / ``retry-after``
headers, on connection errors, timeouts, 408, 409, 429 and 5xx (529 included). One change: a
response that asks for a wait longer than ``max_retry_wait_s`` is not retried. ``timeout_s``
bounds each attempt, not the whole call: the worst case is about
``(max_retries + 1) * timeout_s`` plus the waits.

Django-free except ``teacher_from_settings()`` at the bottom.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anthropic

from boundary.directions import DECOMPOSITION, DIRECTIONS, RECOMPOSITION
from boundary.pricing import DEFAULT_PRICES, PriceTable
from boundary.triples import (
    DEFAULT_LIMITS,
    Triple,
    TripleLimits,
    TripleValidationError,
    parse_triples,
    to_linear,
)

TOOL_NAME = "record_triples"

DECOMPOSITION_SYSTEM_PROMPT = """\
You turn English text into knowledge-graph triples.
Extract every fact the text states as a (subject, predicate, object) triple and record them all \
in one call to the record_triples tool.
- subject and object: entity names as they appear in the text; resolve pronouns to the entity.
- predicate: a short camelCase relation name, e.g. birthPlace, leaderName, runwayLength.
- dates, numbers and quantities: literal objects as written, e.g. 1932-03-15, 3.5 km.
- Only what the text states: no inferences, no background knowledge, no duplicates.
- If the text states no facts, record an empty list."""

RECOMPOSITION_SYSTEM_PROMPT = """\
You turn knowledge-graph triples into English.
Each input line is one triple: subject | predicate | object. Underscores in names stand for \
spaces; predicates are camelCase relation names.
Write fluent, faithful English that expresses every triple and nothing more: add no facts, \
opinions or details that the triples do not state.
Output only the text: no preamble, heading, list or quotation marks."""

# Estimating tokens: ~4 characters a token for English. The tool-use system prompt that the API
# adds when tool_choice forces a tool (Anthropic's pricing page: 313 tokens on Claude 4 models)
# is billed as input; the tool_use block around the triples' JSON costs a few output tokens.
CHARS_PER_TOKEN = 4
TOOL_USE_SYSTEM_PROMPT_TOKENS = 313
TOOL_USE_OUTPUT_OVERHEAD_TOKENS = 20


class TeacherError(Exception):
    """A teacher call that produced no usable answer. ``code`` is stable; the message is not."""

    def __init__(self, code: str, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other arguments than args holds; rebuild from the state instead, so an
        # error survives pickling (a task queue, a multiprocessing pool).
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(
    cls: type[TeacherError], args: tuple[Any, ...], state: dict[str, Any]
) -> TeacherError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class TeacherUnavailable(TeacherError):
    """No key, no network, a timeout, a server error, failed authentication or another 4xx."""


class TeacherRateLimited(TeacherError):
    """429 after the SDK's retries; ``retry_after_s`` from the last response's headers."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        status_code: int | None = 429,
    ) -> None:
        super().__init__("rate_limited", message, status_code=status_code)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Usage:
    """What one Messages API call cost; kept with the answer, and with a billed wrong answer."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    latency_ms: float

    def call_fields(self) -> dict[str, Any]:
        """The BoundaryCall columns that record the bill."""
        return {
            "llm_model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }


class TeacherInvalidOutput(TeacherError):
    """The model answered, but not in the required shape.

    The call was billed all the same, so the usage is kept for the call log.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        raw_output: object = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(code, message)
        self.errors: dict[str, list[str]] = dict(errors or {})
        self.raw_output = raw_output
        self.usage = usage


@dataclass(frozen=True)
class TeacherResult:
    output: list[Triple] | str
    usage: Usage


@dataclass(frozen=True)
class _Reply:
    """A well-formed Messages API response, before its content is interpreted."""

    content: list[Any]
    stop_reason: str | None
    usage: Usage

    def invalid(
        self,
        code: str,
        message: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        raw_output: object = None,
    ) -> TeacherInvalidOutput:
        return TeacherInvalidOutput(
            code, message, errors=errors, raw_output=raw_output, usage=self.usage
        )

    def result(self, output: list[Triple] | str) -> TeacherResult:
        return TeacherResult(output=output, usage=self.usage)


def triples_tool(limits: TripleLimits) -> dict[str, Any]:
    """The ``record_triples`` tool definition; its schema mirrors ``parse_triples``' rules."""
    field = {"type": "string", "minLength": 1, "maxLength": limits.max_field_chars}
    return {
        "name": TOOL_NAME,
        "description": (
            "Record every fact stated in the text as subject-predicate-object triples. "
            "Call exactly once, with all the triples (an empty list if the text states no facts)."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "triples": {
                    "type": "array",
                    "maxItems": limits.max_triples,
                    "items": {
                        "type": "object",
                        "properties": {
                            "subject": {**field, "description": "Entity name as in the text."},
                            "predicate": {**field, "description": "camelCase relation name."},
                            "object": {**field, "description": "Entity name or literal value."},
                        },
                        "required": ["subject", "predicate", "object"],
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["triples"],
            "additionalProperties": False,
        },
    }


class _Anthropic(anthropic.Anthropic):
    """The SDK client, except that it does not retry when told to wait longer than a limit.

    The SDK sleeps for whatever ``retry-after`` a response asks (even hours); a web request
    must rather fail fast and let the cascade degrade. This overrides the SDK's private
    ``_should_retry`` hook: should a later SDK drop it, its plain behaviour remains.
    """

    def __init__(self, *, max_retry_wait_s: float = math.inf, **options: Any) -> None:
        super().__init__(**options)
        self._max_retry_wait_s = max_retry_wait_s

    def _should_retry(self, response: Any) -> bool:
        wait = _retry_after_s(response.headers)
        if wait is not None and wait > self._max_retry_wait_s:
            return False
        return super()._should_retry(response)


class AnthropicTeacher:
    """The LLM behind the boundary. Thread-safe; build one per process and reuse it."""

    def __init__(
        self,
        *,
        api_key: str | None,
        decomposition_model: str,
        recomposition_model: str,
        prices: PriceTable,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        max_output_tokens: int = 2048,
        limits: TripleLimits = DEFAULT_LIMITS,
        base_url: str | None = None,
        max_retry_wait_s: float = 10.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if max_output_tokens < 1:
            raise ValueError("max_output_tokens must be >= 1")
        self._api_key = api_key or None
        self.decomposition_model = decomposition_model
        self.recomposition_model = recomposition_model
        self.prices = prices
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_output_tokens = max_output_tokens
        self.limits = limits
        self.base_url = base_url
        self.max_retry_wait_s = max_retry_wait_s
        self.tool = triples_tool(limits)
        self._tool_json_chars = len(json.dumps(self.tool))
        self._sdk: _Anthropic | None = None
        self._sdk_lock = threading.Lock()

    def __repr__(self) -> str:
        # Never show the key.
        return (
            f"AnthropicTeacher(configured={self.configured}, "
            f"decomposition_model={self.decomposition_model!r}, "
            f"recomposition_model={self.recomposition_model!r})"
        )

    @property
    def configured(self) -> bool:
        return self._api_key is not None

    def decompose(self, text: str) -> TeacherResult:
        """Text -> triples. An empty list is a valid answer for a text that states no facts."""
        if not text.strip():
            raise ValueError("text must not be blank")
        reply = self._create(
            model=self.decomposition_model,
            system=DECOMPOSITION_SYSTEM_PROMPT,
            user=text,
            tools=[self.tool],
            tool_choice={"type": "tool", "name": TOOL_NAME},
        )
        _check_stop_reason(reply)
        tool_input = next(
            (
                getattr(block, "input", None)
                for block in reply.content
                if getattr(block, "type", None) == "tool_use"
                and getattr(block, "name", None) == TOOL_NAME
            ),
            None,
        )
        if tool_input is None:
            raise reply.invalid(
                "invalid_output",
                f"the model did not call {TOOL_NAME}",
                raw_output=_text_of(reply.content),
            )
        if not isinstance(tool_input, dict) or "triples" not in tool_input:
            raise reply.invalid(
                "invalid_output",
                f"{TOOL_NAME} input must be an object with a 'triples' list",
                errors={"triples": ["This field is required."]},
                raw_output=tool_input,
            )
        if tool_input["triples"] == []:
            # A text that states no facts has no triples; parse_triples rejects an empty list
            # because API callers must send at least one, which does not apply to an answer.
            return reply.result([])
        try:
            triples = parse_triples(tool_input["triples"], self.limits, path="triples")
        except TripleValidationError as exc:
            raise reply.invalid(
                "invalid_output",
                f"{TOOL_NAME} input failed validation: {_describe(exc.errors)}",
                errors=exc.errors,
                raw_output=tool_input,
            ) from None
        return reply.result(triples)

    def recompose(self, triples: Sequence[Triple]) -> TeacherResult:
        """Triples -> English text."""
        if not triples:
            raise ValueError("triples must not be empty")
        reply = self._create(
            model=self.recomposition_model,
            system=RECOMPOSITION_SYSTEM_PROMPT,
            user=to_linear(triples),
        )
        _check_stop_reason(reply)
        text = _text_of(reply.content).strip()
        if not text:
            raise reply.invalid("invalid_output", "the model returned no text")
        return reply.result(text)

    def estimate_usage(
        self, direction: str, input_chars: int, output_chars: int
    ) -> tuple[int, int]:
        """Estimated ``(input_tokens, output_tokens)`` the teacher would have used.

        An estimate (about four characters a token), not a token count: it prices what a local
        model's answer saved. ``input_chars`` is the length of the user message (the text, or
        ``to_linear(triples)``); ``output_chars`` that of the answer (the text, or the triples'
        JSON).
        """
        if input_chars < 0 or output_chars < 0:
            raise ValueError("character counts must be non-negative")
        if direction == DECOMPOSITION:
            prompt_chars = len(DECOMPOSITION_SYSTEM_PROMPT) + self._tool_json_chars + input_chars
            input_tokens = _tokens(prompt_chars) + TOOL_USE_SYSTEM_PROMPT_TOKENS
            output_tokens = _tokens(output_chars) + TOOL_USE_OUTPUT_OVERHEAD_TOKENS
        elif direction == RECOMPOSITION:
            input_tokens = _tokens(len(RECOMPOSITION_SYSTEM_PROMPT) + input_chars)
            output_tokens = _tokens(output_chars)
        else:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        return input_tokens, output_tokens

    def model_for(self, direction: str) -> str:
        """The model this direction asks (as configured: an alias or a dated name)."""
        return self.decomposition_model if direction == DECOMPOSITION else self.recomposition_model

    def estimate_cost(self, direction: str, input_chars: int, output_chars: int) -> Decimal | None:
        """What the teacher would have charged for this exchange (an estimate, see above)."""
        input_tokens, output_tokens = self.estimate_usage(direction, input_chars, output_chars)
        return self.prices.cost(self.model_for(direction), input_tokens, output_tokens)

    def _client(self) -> _Anthropic:
        if self._api_key is None:
            raise TeacherUnavailable("no_api_key", "no Anthropic API key is configured")
        with self._sdk_lock:
            if self._sdk is None:
                self._sdk = _Anthropic(
                    max_retry_wait_s=self.max_retry_wait_s,
                    api_key=self._api_key,
                    base_url=self.base_url,
                    # The SDK's own Timeout class: anthropic 2.x runs on httpx2, whose objects
                    # are not interchangeable with httpx's.
                    timeout=anthropic.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
                    max_retries=self.max_retries,
                )
            return self._sdk

    def _create(self, *, model: str, system: str, user: str, **params: Any) -> _Reply:
        client = self._client()
        started = time.perf_counter()
        try:
            message = client.messages.create(
                model=model,
                max_tokens=self.max_output_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                **params,
            )
        except anthropic.AnthropicError as exc:
            raise _translate(exc) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a 200 that claims JSON
            raise TeacherUnavailable("bad_response", f"unreadable response: {exc}") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return self._read_reply(message, requested_model=model, latency_ms=latency_ms)

    def _read_reply(self, message: object, *, requested_model: str, latency_ms: float) -> _Reply:
        # The SDK does not validate response bodies; a proxy's HTML page arrives as a str.
        if not isinstance(message, anthropic.types.Message):
            raise TeacherUnavailable("bad_response", "the response is not a Messages API message")
        usage = getattr(message, "usage", None)
        input_tokens = getattr(usage, "input_tokens", None)
        output_tokens = getattr(usage, "output_tokens", None)
        content = getattr(message, "content", None)
        if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
            raise TeacherUnavailable("bad_response", "the response has no token usage")
        if not isinstance(content, list):
            raise TeacherUnavailable("bad_response", "the response has no content list")
        model = getattr(message, "model", None)
        if not isinstance(model, str) or not model:
            model = requested_model
        cost = self.prices.cost(model, input_tokens, output_tokens)
        if cost is None:
            cost = self.prices.cost(requested_model, input_tokens, output_tokens)
        return _Reply(
            content=content,
            stop_reason=getattr(message, "stop_reason", None),
            usage=Usage(model, input_tokens, output_tokens, cost, latency_ms),
        )


def _check_stop_reason(reply: _Reply) -> None:
    if reply.stop_reason in ("max_tokens", "model_context_window_exceeded"):
        raise reply.invalid(
            "truncated",
            f"the answer was cut off ({reply.stop_reason})",
            raw_output=_text_of(reply.content) or None,
        )
    if reply.stop_reason == "refusal":
        raise reply.invalid("refused", "the model declined to answer")


def _text_of(content: list[Any]) -> str:
    return "".join(
        block.text
        for block in content
        if getattr(block, "type", None) == "text" and isinstance(getattr(block, "text", None), str)
    )


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _describe(errors: Mapping[str, list[str]], limit: int = 5) -> str:
    items = [f"{path}: {'; '.join(messages)}" for path, messages in errors.items()]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    try:
        return max(0.0, float(headers["retry-after-ms"]) / 1000)
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _translate(exc: anthropic.AnthropicError) -> TeacherError:
    """The SDK's exception (raised after its retries) as one of ours."""
    if isinstance(exc, anthropic.RateLimitError):
        return TeacherRateLimited(
            f"rate limited by Anthropic: {_api_message(exc)}",
            retry_after_s=_retry_after_s(exc.response.headers),
        )
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return TeacherUnavailable(
            "authentication_failed",
            f"Anthropic refused the API key ({exc.status_code}): {_api_message(exc)}",
            status_code=exc.status_code,
        )
    if isinstance(exc, anthropic.APITimeoutError):
        return TeacherUnavailable("timeout", "Anthropic did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        return TeacherUnavailable("connection_error", f"cannot reach Anthropic{detail}")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        message = f"Anthropic answered {status}: {_api_message(exc)}"
        if status == 529 or getattr(exc, "type", None) == "overloaded_error":
            return TeacherUnavailable("overloaded", message, status_code=status)
        if status >= 500:
            return TeacherUnavailable("server_error", message, status_code=status)
        if status == 408:
            return TeacherUnavailable("timeout", message, status_code=status)
        return TeacherUnavailable("bad_request", message, status_code=status)
    return TeacherUnavailable("api_error", f"{type(exc).__name__}: {exc}")


def _api_message(exc: anthropic.APIStatusError) -> str:
    return getattr(exc, "api_message", None) or exc.message


# -- Django --------------------------------------------------------------------------------------

DEFAULT_TEACHER_MODELS = {DECOMPOSITION: "claude-haiku-4-5", RECOMPOSITION: "claude-haiku-4-5"}

_TEACHER_SETTINGS = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "VALENCE_TEACHER_MODELS",
        "VALENCE_TEACHER_PRICES",
        "VALENCE_TEACHER_TIMEOUT_S",
        "VALENCE_TEACHER_MAX_RETRIES",
        "VALENCE_MAX_TRIPLES",
        "VALENCE_MAX_FIELD_CHARS",
    }
)


@functools.lru_cache(maxsize=1)
def teacher_from_settings() -> AnthropicTeacher:
    """The process's teacher, built from Django settings once (``cache_clear()`` rebuilds it)."""
    from django.conf import settings

    from boundary.triples_settings import limits_from_settings

    models = {**DEFAULT_TEACHER_MODELS, **getattr(settings, "VALENCE_TEACHER_MODELS", {})}
    # Settings override or extend the default prices, model by model.
    prices = {**DEFAULT_PRICES, **getattr(settings, "VALENCE_TEACHER_PRICES", {})}
    return AnthropicTeacher(
        api_key=getattr(settings, "ANTHROPIC_API_KEY", None) or None,
        decomposition_model=models[DECOMPOSITION],
        recomposition_model=models[RECOMPOSITION],
        prices=PriceTable(prices),
        timeout_s=float(getattr(settings, "VALENCE_TEACHER_TIMEOUT_S", 30.0)),
        max_retries=int(getattr(settings, "VALENCE_TEACHER_MAX_RETRIES", 2)),
        limits=limits_from_settings(),
    )


def _clear_teacher_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in _TEACHER_SETTINGS:
        teacher_from_settings.cache_clear()


try:  # Django is optional for this module; the signal lives in django.core, not django.test.
    from django.core.signals import setting_changed
except ImportError:  # pragma: no cover
    pass
else:
    setting_changed.connect(_clear_teacher_cache, dispatch_uid="boundary.teacher.settings")
