"""The API's JSON parser: every body that is not valid JSON is a 400, however it fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """DRF's JSONParser, plus the one decode failure it lets through as a 500.

    Python's decoder recurses once per nesting level, so `[[[...]]]` about 1,000 deep raises
    RecursionError (not a ValueError, which DRF turns into a ParseError). No valid request
    nests deeper than a handful of levels. Every other failure (bad syntax, bytes that are not
    the declared charset, NaN, an integer over Python's digit limit) is a ValueError already.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
