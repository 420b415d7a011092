"""Prices as data: the shipped table, exact costs, user overrides and their errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from oriole.errors import ValidationError
from oriole.llm.pricing import Price, PriceTable, load_price_table


def test_builtin_prices() -> None:
    table = PriceTable.builtin()
    haiku = table.price("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert haiku is not None
    assert (haiku.input_per_million, haiku.output_per_million) == (Decimal("0.8"), Decimal("4"))
    assert haiku.as_of is not None
    nova = table.price("bedrock", "amazon.nova-micro-v1:0")
    assert nova == Price("0.035", "0.14", nova.as_of if nova else None)
    assert table.price("openai", "gpt-4o-mini") == Price(0.15, 0.60, date(2026, 11, 24))
    premier = table.price("bedrock", "amazon.nova-premier-v1:0")
    assert premier is not None and premier.output_per_million == Decimal("12.5")


@pytest.mark.parametrize("prefix", ["us.", "eu.", "apac.", "global."])
def test_bedrock_inference_profiles_cost_what_the_base_model_costs(prefix: str) -> None:
    table = PriceTable.builtin()
    base = table.price("bedrock", "amazon.nova-lite-v1:0")
    assert base is not None
    assert table.price("bedrock", f"{prefix}amazon.nova-lite-v1:0") == base


def test_ollama_is_free_and_unknown_models_have_no_price() -> None:
    table = PriceTable.builtin()
    local = table.price("ollama", "qwen2.5:7b")
    assert local is not None and local.cost(10**6, 10**6) == 0.0
    assert table.price("openai", "my-finetune") is None
    assert table.price("bedrock", "us.amazon.nova-ultra-v9:0") is None
    assert table.price("builtin", "frontier") is None
    assert table.price("openai", "eu.gpt-4o") is None  # profile prefixes are a Bedrock thing


def test_costs_are_exact() -> None:
    nova = Price("0.035", "0.14")
    assert nova.cost(1234, 567) == 0.00012257
    assert nova.exact_cost(1234, 567) == Decimal("0.00012257")
    # Many small calls add up without drift when summed as Decimal.
    total = sum((nova.exact_cost(1, 1) for _ in range(1_000_000)), Decimal(0))
    assert total == Decimal("0.175")
    tiny = Price("0.0000001", "0")
    assert tiny.cost(1, 0) == 0.0  # 1e-13 USD rounds to 0 at 10 decimals
    assert Price(3, 15).cost(333, 0) == 0.000999
    with pytest.raises(ValidationError, match="tokens"):
        nova.cost(-1, 0)


def test_price_rejects_negative_and_non_numbers() -> None:
    with pytest.raises(ValidationError, match="input_per_million"):
        Price(-1, 0)
    with pytest.raises(ValidationError, match="output_per_million"):
        Price(0, "lots")
    with pytest.raises(ValidationError):
        Price(float("nan"), 0)


OVERRIDE = """
[openai]
as_of = 2027-01-01

[openai.models]
"gpt-4o-mini" = { input = 0.10, output = 0.50 }
"my-finetune" = { input = 1, output = 2, as_of = 2027-02-02 }

[bedrock.models]
"*" = { input = 1, output = 1 }
"""


def test_override_file_is_merged_over_the_builtin_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDE, encoding="utf-8")
    table = load_price_table(path)
    assert table.price("openai", "gpt-4o-mini") == Price("0.1", "0.5", date(2027, 1, 1))
    assert table.price("openai", "my-finetune") == Price(1, 2, date(2027, 2, 2))
    assert table.price("openai", "gpt-4o") == PriceTable.builtin().price("openai", "gpt-4o")
    # An exact (or base-id) entry beats the provider's wildcard.
    nova = table.price("bedrock", "eu.amazon.nova-pro-v1:0")
    assert nova is not None and nova.input_per_million == Decimal("0.8")
    assert table.price("bedrock", "cohere.command-r-v1:0") == Price(1, 1)
    assert load_price_table(None) == PriceTable.builtin()
    assert PriceTable.builtin().price("openai", "my-finetune") is None  # not mutated


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "[anthropic.models]\nx = { input = 1, output = 1 }",
            "prices.toml: anthropic",
            "unknown provider",
        ),
        ('[openai.models]\n"m" = { input = 1 }', 'openai.models."m".output', "missing"),
        ('[openai.models]\n"m" = { input = -1, output = 1 }', 'openai.models."m".input', ">= 0"),
        ('[openai.models]\n"m" = { input = "1", output = 1 }', 'openai.models."m".input', "number"),
        ('[openai.models]\n"m" = { input = 1, output = 1, cost = 2 }', '"m".cost', "unknown key"),
        ('[openai.models]\n"m" = 3', 'openai.models."m"', "expected { input"),
        ("[openai]\nas_of = 'yesterday'", "openai.as_of", "expected a date"),
        ("[openai]\nprices = {}", "openai.prices", "unknown key"),
        ("[openai.models\n", "prices.toml", "not valid TOML"),
    ],
)
def test_bad_price_files_name_the_file_the_key_and_the_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        load_price_table(path)
    assert str(path) in caught.value.field
    assert key in caught.value.field
    assert reason in caught.value.reason


def test_missing_price_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the price file"):
        load_price_table(tmp_path / "nope.toml")
