from decimal import Decimal

import pytest

from boundary.pricing import DEFAULT_PRICES, ModelPrice, PriceTable


@pytest.fixture
def table() -> PriceTable:
    return PriceTable(DEFAULT_PRICES)


def test_it_finds_an_exact_model_id(table):
    assert table.price_for("claude-haiku-4-5") == ModelPrice(Decimal("1"), Decimal("5"))


def test_it_finds_a_dated_model_id_by_its_family(table):
    assert table.price_for("claude-haiku-4-5-20251001") == ModelPrice(Decimal(1), Decimal(5))


def test_it_prefers_the_longest_matching_family(table):
    # "claude-sonnet-4" is also a prefix of this id; the more specific family wins.
    assert table.price_for("claude-opus-4-5-20251101").input_per_mtok == Decimal(5)
    assert table.price_for("claude-opus-4-1-20250805").input_per_mtok == Decimal(15)
    assert table.price_for("claude-sonnet-4-20250514").output_per_mtok == Decimal(15)


def test_it_does_not_match_a_prefix_in_the_middle_of_a_version(table):
    assert table.price_for("claude-opus-4-10") is None


def test_it_returns_none_for_an_unknown_model(table):
    assert table.price_for("gpt-4o") is None
    assert table.cost("gpt-4o", 1000, 1000) is None
    assert "gpt-4o" not in table


def test_it_computes_the_cost_of_a_call(table):
    # 1,000 input at $1/MTok + 500 output at $5/MTok = 0.001 + 0.0025
    assert table.cost("claude-haiku-4-5-20251001", 1000, 500) == Decimal("0.003500")


def test_it_rounds_the_cost_to_a_millionth_of_a_dollar(table):
    # 1 token at $0.8/MTok is $0.0000008.
    assert table.cost("claude-3-5-haiku-20241022", 1, 0) == Decimal("0.000001")
    assert table.cost("claude-3-5-haiku", 0, 0) == Decimal("0.000000")


def test_it_keeps_float_prices_exact():
    table = PriceTable({"m": {"input": 0.8, "output": 4.1}})
    assert table.price_for("m") == ModelPrice(Decimal("0.8"), Decimal("4.1"))


def test_an_override_table_replaces_the_defaults():
    table = PriceTable(
        {
            "claude-haiku-4-5": {"input": "2", "output": "10"},
            "local-llm": ModelPrice(Decimal(0), Decimal(0)),
        }
    )
    assert table.cost("claude-haiku-4-5-20251001", 1_000_000, 0) == Decimal("2.000000")
    assert table.cost("local-llm", 5000, 5000) == Decimal("0.000000")
    assert table.price_for("claude-sonnet-4-5") is None


@pytest.mark.parametrize(
    "entry",
    [
        {"input": "1"},
        {"input": "1", "output": "5", "cache": "1"},
        {"input": "cheap", "output": "5"},
        {"input": "-1", "output": "5"},
        {"input": True, "output": "5"},
        {"input": "NaN", "output": "5"},
        "1/5",
    ],
)
def test_it_rejects_a_bad_price_entry(entry):
    with pytest.raises(ValueError):
        PriceTable({"m": entry})


def test_it_rejects_negative_token_counts(table):
    with pytest.raises(ValueError):
        table.cost("claude-haiku-4-5", -1, 0)
