"""A fake Anthropic Messages API at the HTTP layer: the real SDK code runs, the network never does.

anthropic 2.x sends its requests through ``httpx2``, which respx does not patch, so this module
registers a small respx mocker for httpx2 (``respx.mock(using="httpx2")``). Routes and side
effects are written with plain ``httpx`` objects as usual; the mocker translates both ways.
"""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from respx.mocks import Mocker

from boundary.teacher import TOOL_NAME


class HTTPX2Mocker(Mocker):
    """Routes every httpx2 request (the Anthropic SDK's) through the active respx routers."""

    name = "httpx2"
    targets = ["httpx2._client.Client"]
    target_methods = ["_transport_for_url"]

    @classmethod
    def mock(cls, spec: Any) -> Any:
        def _transport_for_url(self: Any, *args: Any, **kwargs: Any) -> httpx2.BaseTransport:
            return httpx2.MockTransport(cls._handle)

        return _transport_for_url

    @classmethod
    def _handle(cls, request: httpx2.Request) -> httpx2.Response:
        request.read()
        as_httpx = httpx.Request(
            request.method, str(request.url), headers=request.headers.raw, content=request.content
        )
        try:
            response = cls.handler(as_httpx)
        except httpx.TransportError as exc:  # a side effect such as httpx.ReadTimeout
            raise getattr(httpx2, type(exc).__name__)(str(exc), request=request) from exc
        response.read()
        return httpx2.Response(
            response.status_code,
            headers=response.headers.raw,
            content=response.content,
            request=request,
        )


API = "https://api.anthropic.com"
KEY = "sk-ant-test-key"
MODEL = "claude-haiku-4-5"
DATED_MODEL = "claude-haiku-4-5-20251001"
FAST_RETRY = {"retry-after-ms": "1"}  # the SDK honours it, so retries take a millisecond


def message(content: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": DATED_MODEL,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 300},
    }
    return {**body, **overrides}


def tool_message(tool_input: object, **overrides: Any) -> dict[str, Any]:
    block = {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": TOOL_NAME}
    return message([{**block, "input": tool_input}], **{"stop_reason": "tool_use", **overrides})


def text_message(*texts: str, **overrides: Any) -> dict[str, Any]:
    return message([{"type": "text", "text": text} for text in texts], **overrides)


def error(status: int, kind: str, text: str, headers: dict[str, str] | None = None):
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return httpx.Response(status, json=body, headers=headers)
