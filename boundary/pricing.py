"""What a teacher (LLM) call costs: a per-model price table in USD per million tokens.

Django-free. Settings hold the table (``VALENCE_TEACHER_PRICES``) so prices can change without a
release; ``DEFAULT_PRICES`` is the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

USD_QUANTUM = Decimal("0.000001")
_PER_MTOK = Decimal(1_000_000)

# USD per million tokens (input / output), from Anthropic's public price list.
DEFAULT_PRICES: dict[str, dict[str, str]] = {
    "claude-haiku-4-5": {"input": "1", "output": "5"},
    "claude-sonnet-4-5": {"input": "3", "output": "15"},
    "claude-sonnet-4": {"input": "3", "output": "15"},
    "claude-opus-4-5": {"input": "5", "output": "25"},
    "claude-opus-4-1": {"input": "15", "output": "75"},
    "claude-3-5-haiku": {"input": "0.8", "output": "4"},
}


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal


def _to_decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    try:
        # str() first so that a float such as 0.8 becomes Decimal("0.8"), not its binary expansion.
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"{where}: expected a non-negative number, got {value!r}")
    return price


def _to_price(model: str, entry: ModelPrice | Mapping[str, float | str]) -> ModelPrice:
    if isinstance(entry, ModelPrice):
        return ModelPrice(
            _to_decimal(entry.input_per_mtok, f"{model}.input"),
            _to_decimal(entry.output_per_mtok, f"{model}.output"),
        )
    if not isinstance(entry, Mapping) or set(entry) != {"input", "output"}:
        raise ValueError(f"{model}: expected {{'input': ..., 'output': ...}}, got {entry!r}")
    return ModelPrice(
        _to_decimal(entry["input"], f"{model}.input"),
        _to_decimal(entry["output"], f"{model}.output"),
    )


class PriceTable:
    """Prices by model id; a dated id such as ``claude-haiku-4-5-20251001`` finds its family.

    Bad entries raise ``ValueError`` at construction, so a typo in settings fails at start-up
    rather than as a silently missing cost.
    """

    def __init__(self, prices: Mapping[str, ModelPrice | Mapping[str, float | str]]) -> None:
        self._prices: dict[str, ModelPrice] = {
            model: _to_price(model, entry) for model, entry in prices.items()
        }
        # Longest first: the most specific family wins ("claude-sonnet-4-5" over "claude-sonnet-4").
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.price_for(model) is not None

    def __len__(self) -> int:
        return len(self._prices)

    def price_for(self, model: str) -> ModelPrice | None:
        """The exact id's price, else that of the longest key the id starts with.

        A prefix only counts when the id goes on with a non-alphanumeric character, so
        ``claude-opus-4-10`` does not pick up the price of ``claude-opus-4-1``.
        """
        exact = self._prices.get(model)
        if exact is not None:
            return exact
        for key in self._by_length:
            if model.startswith(key) and not model[len(key)].isalnum():
                return self._prices[key]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        """USD for one call, rounded to a millionth of a dollar; ``None`` for an unknown model."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts must be non-negative")
        price = self.price_for(model)
        if price is None:
            return None
        total = input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok
        return (total / _PER_MTOK).quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)


DEFAULT_PRICE_TABLE = PriceTable(DEFAULT_PRICES)
