"""AnthropicTeacher against the fake Messages API in tests/anthropic_mock.py: no network."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from boundary.directions import DECOMPOSITION, RECOMPOSITION
from boundary.pricing import DEFAULT_PRICES, PriceTable
from boundary.teacher import (
    DECOMPOSITION_SYSTEM_PROMPT,
    RECOMPOSITION_SYSTEM_PROMPT,
    TOOL_NAME,
    AnthropicTeacher,
    TeacherInvalidOutput,
    TeacherRateLimited,
    TeacherResult,
    TeacherUnavailable,
    teacher_from_settings,
)
from boundary.triples import Triple, TripleLimits
from tests.anthropic_mock import (
    DATED_MODEL,
    FAST_RETRY,
    KEY,
    MODEL,
    error,
    text_message,
    tool_message,
)

ALAN_BEAN = [
    {"subject": "Alan Bean", "predicate": "birthPlace", "object": "Wheeler, Texas"},
    {"subject": "Alan Bean", "predicate": "birthDate", "object": "1932-03-15"},
]


@pytest.fixture
def messages(anthropic_api):
    return anthropic_api.post("/v1/messages")


def make_teacher(**overrides: Any) -> AnthropicTeacher:
    options: dict[str, Any] = {
        "api_key": KEY,
        "decomposition_model": MODEL,
        "recomposition_model": MODEL,
        "prices": PriceTable(DEFAULT_PRICES),
        "max_retries": 1,
    }
    return AnthropicTeacher(**{**options, **overrides})


def sent_body(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


# --- decomposition ---------------------------------------------------------------------------


def test_it_returns_triples_from_tool_use(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": ALAN_BEAN}))

    result = make_teacher().decompose("Alan Bean was born in Wheeler, Texas on 15 March 1932.")

    assert isinstance(result, TeacherResult)
    assert result.output == [
        Triple("Alan Bean", "birthPlace", "Wheeler, Texas"),
        Triple("Alan Bean", "birthDate", "1932-03-15"),
    ]
    assert result.usage.model == DATED_MODEL
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1200, 300)
    assert result.usage.cost_usd == Decimal("0.002700")  # 1200 x $1/MTok + 300 x $5/MTok
    assert result.usage.latency_ms > 0
    assert messages.call_count == 1


def test_it_forces_the_record_triples_tool(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": ALAN_BEAN}))

    make_teacher(decomposition_model="claude-opus-4-1", max_output_tokens=1000).decompose(
        "Alan Bean was born in Wheeler, Texas."
    )

    body = sent_body(messages)
    assert body["model"] == "claude-opus-4-1"
    assert body["max_tokens"] == 1000
    assert body["system"] == DECOMPOSITION_SYSTEM_PROMPT
    assert body["messages"] == [
        {"role": "user", "content": "Alan Bean was born in Wheeler, Texas."}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    [tool] = body["tools"]
    assert tool["name"] == TOOL_NAME
    item = tool["input_schema"]["properties"]["triples"]["items"]
    assert item["required"] == ["subject", "predicate", "object"]
    assert item["additionalProperties"] is False


def test_it_tells_the_model_the_triple_limits(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": ALAN_BEAN}))

    make_teacher(limits=TripleLimits(max_triples=8, max_field_chars=120)).decompose("Some text.")

    schema = sent_body(messages)["tools"][0]["input_schema"]["properties"]["triples"]
    assert schema["maxItems"] == 8
    assert schema["items"]["properties"]["object"]["maxLength"] == 120


def test_it_sends_the_key_and_the_configured_timeout(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": ALAN_BEAN}))

    make_teacher(timeout_s=12.5).decompose("Some text.")

    headers = messages.calls.last.request.headers
    assert KEY in headers.get("x-api-key", "") + headers.get("authorization", "")
    # The SDK reports the read timeout it applies to each attempt.
    assert float(headers["x-stainless-read-timeout"]) == 12.5


def test_it_returns_an_empty_list_when_the_text_states_no_facts(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": []}))

    result = make_teacher().decompose("Hello there!")

    assert result.output == []
    assert result.usage.input_tokens == 1200


def test_it_prices_with_the_requested_model_when_the_answering_model_is_unknown(messages):
    body = tool_message({"triples": ALAN_BEAN}, model="claude-experimental-preview")
    messages.return_value = httpx.Response(200, json=body)

    result = make_teacher().decompose("Some text.")

    assert result.usage.model == "claude-experimental-preview"
    assert result.usage.cost_usd == Decimal("0.002700")


def test_it_has_no_cost_when_no_model_is_priced(messages):
    messages.return_value = httpx.Response(200, json=tool_message({"triples": ALAN_BEAN}))

    result = make_teacher(prices=PriceTable({})).decompose("Some text.")

    assert result.usage.cost_usd is None


@pytest.mark.parametrize(
    ("tool_input", "bad_path"),
    [
        ({"triples": [{"subject": "Alan Bean", "predicate": "birthPlace"}]}, "triples[0].object"),
        ({"triples": [{**ALAN_BEAN[0], "subject": "  "}]}, "triples[0].subject"),
        ({"triples": [{**ALAN_BEAN[0], "object": 1932}]}, "triples[0].object"),
        ({"triples": [{**ALAN_BEAN[0], "confidence": 0.9}]}, "triples[0]"),
        ({"triples": "Alan Bean | birthPlace | Texas"}, "triples"),
        ({"facts": ALAN_BEAN}, "triples"),
        ({"triples": ALAN_BEAN * 3}, "triples"),
    ],
    ids=[
        "missing-field",
        "blank-field",
        "wrong-type",
        "extra-field",
        "not-a-list",
        "no-triples-key",
        "too-many",
    ],
)
def test_it_rejects_malformed_tool_input(messages, tool_input, bad_path):
    messages.return_value = httpx.Response(200, json=tool_message(tool_input))

    with pytest.raises(TeacherInvalidOutput) as caught:
        make_teacher(limits=TripleLimits(max_triples=4)).decompose("Some text.")

    assert caught.value.code == "invalid_output"
    assert bad_path in caught.value.errors
    assert caught.value.raw_output == tool_input
    # The call was billed, so the usage survives for the call log.
    assert caught.value.usage.cost_usd == Decimal("0.002700")
    assert messages.call_count == 1  # a malformed answer is not retried


def test_it_rejects_an_answer_without_a_tool_call(messages):
    messages.return_value = httpx.Response(200, json=text_message("Alan Bean was an astronaut."))

    with pytest.raises(TeacherInvalidOutput, match=TOOL_NAME) as caught:
        make_teacher().decompose("Some text.")

    assert caught.value.code == "invalid_output"
    assert caught.value.raw_output == "Alan Bean was an astronaut."


def test_it_rejects_a_call_to_another_tool(messages):
    body = tool_message({"triples": ALAN_BEAN})
    body["content"][0]["name"] = "web_search"
    messages.return_value = httpx.Response(200, json=body)

    with pytest.raises(TeacherInvalidOutput):
        make_teacher().decompose("Some text.")


def test_it_reports_truncated_triples(messages):
    body = tool_message({"triples": ALAN_BEAN[:1]}, stop_reason="max_tokens")
    messages.return_value = httpx.Response(200, json=body)

    with pytest.raises(TeacherInvalidOutput) as caught:
        make_teacher().decompose("Some text.")

    assert caught.value.code == "truncated"


def test_it_rejects_blank_text_without_calling_the_api(messages):
    with pytest.raises(ValueError):
        make_teacher().decompose("   ")

    assert messages.call_count == 0


# --- recomposition ---------------------------------------------------------------------------

TRIPLES = [
    Triple("Alan Bean", "birthPlace", "Wheeler, Texas"),
    Triple("Alan Bean", "occupation", "Test pilot"),
]


def test_it_writes_text_for_triples(messages):
    text = "Alan Bean, born in Wheeler, Texas, was a test pilot."
    messages.return_value = httpx.Response(200, json=text_message(text))

    result = make_teacher(recomposition_model="claude-opus-4-1").recompose(TRIPLES)

    assert result.output == text
    assert result.usage.model == DATED_MODEL
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1200, 300)
    assert result.usage.latency_ms > 0
    body = sent_body(messages)
    assert body["model"] == "claude-opus-4-1"
    assert body["system"] == RECOMPOSITION_SYSTEM_PROMPT
    linear = "Alan Bean | birthPlace | Wheeler, Texas\nAlan Bean | occupation | Test pilot"
    assert body["messages"] == [{"role": "user", "content": linear}]
    assert "tools" not in body
    assert "tool_choice" not in body


def test_it_joins_and_strips_the_text_blocks(messages):
    messages.return_value = httpx.Response(
        200, json=text_message("\n  Alan Bean was born in Wheeler, Texas.", " He was a pilot.\n")
    )

    result = make_teacher().recompose(TRIPLES)

    assert result.output == "Alan Bean was born in Wheeler, Texas. He was a pilot."


@pytest.mark.parametrize("texts", [(), (" \n ",)], ids=["no-blocks", "whitespace"])
def test_it_rejects_an_empty_text(messages, texts):
    messages.return_value = httpx.Response(200, json=text_message(*texts))

    with pytest.raises(TeacherInvalidOutput) as caught:
        make_teacher().recompose(TRIPLES)

    assert caught.value.code == "invalid_output"


def test_it_reports_truncated_text(messages):
    body = text_message("Alan Bean, born in Wheeler,", stop_reason="max_tokens")
    messages.return_value = httpx.Response(200, json=body)

    with pytest.raises(TeacherInvalidOutput) as caught:
        make_teacher().recompose(TRIPLES)

    assert caught.value.code == "truncated"
    assert caught.value.raw_output == "Alan Bean, born in Wheeler,"


def test_it_reports_a_refusal(messages):
    messages.return_value = httpx.Response(200, json=text_message("", stop_reason="refusal"))

    with pytest.raises(TeacherInvalidOutput) as caught:
        make_teacher().recompose(TRIPLES)

    assert caught.value.code == "refused"


def test_it_rejects_no_triples_without_calling_the_api(messages):
    with pytest.raises(ValueError):
        make_teacher().recompose([])

    assert messages.call_count == 0


# --- failures and retries --------------------------------------------------------------------


def test_it_needs_no_network_without_a_key(anthropic_api, messages):
    teacher = make_teacher(api_key=None)

    with pytest.raises(TeacherUnavailable) as caught:
        teacher.decompose("Some text.")

    assert caught.value.code == "no_api_key"
    assert not teacher.configured
    assert len(anthropic_api.calls) == 0


def test_an_empty_key_counts_as_no_key(anthropic_api):
    teacher = make_teacher(api_key="")

    with pytest.raises(TeacherUnavailable, match="no Anthropic API key"):
        teacher.recompose(TRIPLES)

    assert not teacher.configured
    assert len(anthropic_api.calls) == 0


def test_it_raises_rate_limited_once_the_retries_are_spent(messages):
    messages.return_value = error(429, "rate_limit_error", "Slow down.", headers=FAST_RETRY)

    with pytest.raises(TeacherRateLimited) as caught:
        make_teacher(max_retries=1).decompose("Some text.")

    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after_s == pytest.approx(0.001)
    assert messages.call_count == 2  # the first try and max_retries=1 retry


def test_it_reads_retry_after_in_seconds(messages):
    messages.return_value = error(429, "rate_limit_error", "Slow down.", {"retry-after": "7"})

    with pytest.raises(TeacherRateLimited) as caught:
        make_teacher(max_retries=0).decompose("Some text.")

    assert caught.value.retry_after_s == 7.0
    assert messages.call_count == 1


def test_it_does_not_retry_when_asked_to_wait_longer_than_it_may(messages):
    # Would sleep 1 s per retry if the limit were ignored.
    messages.return_value = error(429, "rate_limit_error", "Slow down.", {"retry-after": "1"})

    with pytest.raises(TeacherRateLimited) as caught:
        make_teacher(max_retries=2, max_retry_wait_s=0.5).decompose("Some text.")

    assert caught.value.retry_after_s == 1.0
    assert messages.call_count == 1


def test_a_teacher_error_survives_pickling():
    error = pickle.loads(pickle.dumps(TeacherRateLimited("Slow down.", retry_after_s=3.0)))

    assert isinstance(error, TeacherRateLimited)
    assert (error.code, error.message, error.retry_after_s) == ("rate_limited", "Slow down.", 3.0)


def test_it_recovers_from_a_server_error_by_retrying(messages):
    messages.side_effect = [
        error(500, "api_error", "Internal server error", headers=FAST_RETRY),
        httpx.Response(200, json=tool_message({"triples": ALAN_BEAN})),
    ]

    result = make_teacher(max_retries=1).decompose("Some text.")

    assert len(result.output) == 2
    assert messages.call_count == 2
    assert messages.calls[1].request.headers["x-stainless-retry-count"] == "1"


def test_it_gives_up_on_a_persistent_server_error(messages):
    messages.return_value = error(500, "api_error", "Internal server error", headers=FAST_RETRY)

    with pytest.raises(TeacherUnavailable) as caught:
        make_teacher(max_retries=2).recompose(TRIPLES)

    assert caught.value.code == "server_error"
    assert caught.value.status_code == 500
    assert messages.call_count == 3


def test_it_reports_an_overloaded_api(messages):
    messages.return_value = error(529, "overloaded_error", "Overloaded", headers=FAST_RETRY)

    with pytest.raises(TeacherUnavailable) as caught:
        make_teacher(max_retries=1).decompose("Some text.")

    assert caught.value.code == "overloaded"
    assert messages.call_count == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "authentication_error"), (403, "permission_error")]
)
def test_it_reports_a_rejected_key_without_retrying(messages, status, kind):
    messages.return_value = error(status, kind, "invalid x-api-key")

    with pytest.raises(TeacherUnavailable) as caught:
        make_teacher(max_retries=2).decompose("Some text.")

    assert caught.value.code == "authentication_failed"
    assert messages.call_count == 1


def test_it_reports_a_bad_request_with_its_status(messages):
    messages.return_value = error(400, "invalid_request_error", "max_tokens: too large")

    with pytest.raises(TeacherUnavailable, match="400.*max_tokens: too large") as caught:
        make_teacher(max_retries=2).decompose("Some text.")

    assert caught.value.code == "bad_request"
    assert caught.value.status_code == 400
    assert messages.call_count == 1


@pytest.mark.parametrize("timeout", [httpx.ReadTimeout, httpx.ConnectTimeout])
def test_it_reports_a_timeout(messages, timeout):
    messages.side_effect = timeout

    with pytest.raises(TeacherUnavailable) as caught:
        # No retries: the SDK's backoff after a timeout has no retry-after header to shorten it.
        make_teacher(max_retries=0).decompose("Some text.")

    assert caught.value.code == "timeout"
    assert messages.call_count == 1


def test_it_reports_a_connection_error(messages):
    messages.side_effect = httpx.ConnectError

    with pytest.raises(TeacherUnavailable) as caught:
        make_teacher(max_retries=0).recompose(TRIPLES)

    assert caught.value.code == "connection_error"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>Bad gateway</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, text='{"type": "mess', headers={"content-type": "application/json"}),
        httpx.Response(200, json={"type": "message", "content": []}),
    ],
    ids=["html", "broken-json", "no-usage"],
)
def test_it_reports_a_body_that_is_not_a_message(messages, response):
    messages.return_value = response

    with pytest.raises(TeacherUnavailable) as caught:
        make_teacher().decompose("Some text.")

    assert caught.value.code == "bad_response"


# --- estimates ---------------------------------------------------------------------------------


@given(
    direction=st.sampled_from([DECOMPOSITION, RECOMPOSITION]),
    sizes=st.lists(st.integers(min_value=0, max_value=1_000_000), min_size=2, max_size=2),
    output_chars=st.integers(min_value=0, max_value=100_000),
)
def test_estimate_usage_grows_with_the_input(direction, sizes, output_chars):
    small, large = sorted(sizes)
    teacher = make_teacher()

    small_in, small_out = teacher.estimate_usage(direction, small, output_chars)
    large_in, large_out = teacher.estimate_usage(direction, large, output_chars)

    assert small_in <= large_in
    assert small_out == large_out


def test_estimate_usage_counts_the_prompt_and_four_characters_a_token():
    teacher = make_teacher()

    empty_in, empty_out = teacher.estimate_usage(RECOMPOSITION, 0, 0)
    assert (empty_in, empty_out) == (-(-len(RECOMPOSITION_SYSTEM_PROMPT) // 4), 0)
    assert teacher.estimate_usage(RECOMPOSITION, 400, 401) == (empty_in + 100, 101)
    # Decomposition also pays for the tool definition and the tool-use wrapping.
    decomposition_in, decomposition_out = teacher.estimate_usage(DECOMPOSITION, 0, 0)
    assert decomposition_in > empty_in
    assert decomposition_out > 0


def test_estimate_cost_prices_the_estimated_usage():
    teacher = make_teacher()
    input_tokens, output_tokens = teacher.estimate_usage(DECOMPOSITION, 2000, 600)

    cost = teacher.estimate_cost(DECOMPOSITION, 2000, 600)

    assert cost == PriceTable(DEFAULT_PRICES).cost(MODEL, input_tokens, output_tokens)
    assert cost > 0


def test_estimate_usage_rejects_an_unknown_direction():
    with pytest.raises(ValueError):
        make_teacher().estimate_usage("translation", 10, 10)


# --- settings (needs Django settings: skipped under -p no:django) ------------------------------


def _django_configured() -> bool:
    from django.conf import settings

    return settings.configured


needs_django = pytest.mark.skipif(not _django_configured(), reason="Django settings not configured")


@needs_django
def test_teacher_from_settings_reads_the_settings():
    from django.test import override_settings

    teacher_from_settings.cache_clear()
    with override_settings(
        ANTHROPIC_API_KEY=KEY,
        VALENCE_TEACHER_MODELS={DECOMPOSITION: "claude-opus-4-1"},
        VALENCE_TEACHER_PRICES={"my-model": {"input": 2, "output": 8}},
        VALENCE_TEACHER_TIMEOUT_S=12,
        VALENCE_TEACHER_MAX_RETRIES=0,
        VALENCE_MAX_TRIPLES=8,
        VALENCE_MAX_FIELD_CHARS=100,
    ):
        teacher = teacher_from_settings()

    assert teacher.configured
    assert teacher.decomposition_model == "claude-opus-4-1"
    assert teacher.recomposition_model == "claude-haiku-4-5"  # the default fills the gap
    assert teacher.prices.cost("my-model", 1_000_000, 0) == Decimal(2)
    assert teacher.prices.price_for(DATED_MODEL) is not None  # defaults are kept
    assert (teacher.timeout_s, teacher.max_retries) == (12.0, 0)
    assert teacher.limits == TripleLimits(max_triples=8, max_field_chars=100)


@needs_django
def test_teacher_from_settings_is_rebuilt_only_when_a_teacher_setting_changes():
    from django.test import override_settings

    with override_settings(ANTHROPIC_API_KEY=KEY):
        first = teacher_from_settings()
        assert teacher_from_settings() is first
        with override_settings(USE_TZ=True):
            assert teacher_from_settings() is first
        with override_settings(VALENCE_TEACHER_TIMEOUT_S=5.0):
            assert teacher_from_settings().timeout_s == 5.0
        assert teacher_from_settings() is not first
