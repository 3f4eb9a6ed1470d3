"""Exact cost for every usage shape, checked against hand arithmetic on the published prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokenomy.cli.prices_cmd import prices_group
from tokenomy.pricing.catalogue import Catalogue, PriceError, parse_model
from tokenomy.pricing.cost import cost_usd
from tokenomy.pricing.litellm_prices import convert
from tokenomy.pricing.usage import TokenUsage, normalise_usage

NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def _cost(catalogue: Catalogue, model: str, usage: dict[str, object], at: datetime = NOW) -> Decimal:
    price = catalogue.find(model, at)
    assert price is not None, model
    return cost_usd(price, normalise_usage(usage))


def test_openai_cached_tokens_are_inside_prompt_tokens(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 2000, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1536}}
    assert normalise_usage(usage) == TokenUsage(input=464, cached_read=1536, output=300)
    # gpt-4o: 464 × $2.50 + 1536 × $1.25 + 300 × $10.00 = 1160 + 1920 + 3000 = 6080 µ$ → $0.00608
    assert _cost(catalogue, "gpt-4o-2024-08-06", usage) == Decimal("0.00608")


def test_openai_reasoning_tokens_are_part_of_output(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 800}}
    assert normalise_usage(usage).reasoning == 800
    # o4-mini: 100 × $1.10 + 1000 × $4.40 = 110 + 4400 = 4510 µ$
    assert _cost(catalogue, "o4-mini", usage) == Decimal("0.00451")


def test_anthropic_input_excludes_cache_and_writes_split_5m_1h(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 13_100, "completion_tokens": 500, "anthropic": {
        "input_tokens": 100, "cache_read_input_tokens": 10_000, "cache_creation_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 500}}
    assert normalise_usage(usage) == TokenUsage(input=100, cached_read=10_000, cache_write_5m=1000,
                                                cache_write_1h=2000, output=500)
    # Sonnet 4.5: 100 × 3 + 10000 × 0.30 + 1000 × 3.75 + 2000 × 6 + 500 × 15
    #           = 300 + 3000 + 3750 + 12000 + 7500 = 26550 µ$
    assert _cost(catalogue, "claude-sonnet-4-5-20250929", usage) == Decimal("0.02655")


def test_anthropic_writes_without_split_are_5m(catalogue: Catalogue) -> None:
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0,
             "output_tokens": 20}
    # Haiku 4.5 raw Messages usage: 10 × 1 + 2000 × 1.25 + 20 × 5 = 10 + 2500 + 100 = 2610 µ$
    assert _cost(catalogue, "claude-haiku-4-5", usage) == Decimal("0.00261")


def test_long_context_tier_applies_over_threshold(catalogue: Catalogue) -> None:
    usage = {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000}
    # 210,000 prompt tokens > 200k: 150000 × 6 + 60000 × 0.60 + 1000 × 22.50 = 900000 + 36000 + 22500 µ$
    assert _cost(catalogue, "claude-sonnet-4-5", usage) == Decimal("0.9585")


def test_deepseek_cache_hit_and_miss(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 1000, "prompt_cache_hit_tokens": 800, "prompt_cache_miss_tokens": 200,
             "completion_tokens": 100}
    # deepseek-chat since 2025-09-29: 200 × 0.28 + 800 × 0.028 + 100 × 0.42 = 56 + 22.4 + 42 = 120.4 µ$
    assert _cost(catalogue, "deepseek-chat", usage) == Decimal("0.0001204")
    # the same call in August 2025, at the V3 prices: 200 × 0.27 + 800 × 0.07 + 100 × 1.10 = 54 + 56 + 110 µ$
    assert _cost(catalogue, "deepseek-chat", usage, datetime(2025, 8, 1, tzinfo=UTC)) == Decimal("0.00022")


def test_gemini_native_usage(catalogue: Catalogue) -> None:
    usage = {"promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 50,
             "thoughtsTokenCount": 150}
    assert normalise_usage(usage) == TokenUsage(input=600, cached_read=400, output=200, reasoning=150)
    # gemini-2.5-flash: 600 × 0.30 + 400 × 0.075 + 200 × 2.50 = 180 + 30 + 500 = 710 µ$
    assert _cost(catalogue, "gemini-2.5-flash", usage) == Decimal("0.00071")


def test_batch_prices(catalogue: Catalogue) -> None:
    price = catalogue.find("gpt-4o-mini", NOW)
    assert price is not None
    # 1M in + 1M out at batch: 0.075 + 0.30
    assert cost_usd(price, TokenUsage(input=1_000_000, output=1_000_000), batch=True) == Decimal("0.375")


def test_effective_dates_pick_the_price_in_force(catalogue: Catalogue) -> None:
    before = catalogue.find("o3", datetime(2025, 5, 1, tzinfo=UTC))
    after = catalogue.find("o3", datetime(2025, 7, 1, tzinfo=UTC))
    assert before is not None and after is not None
    assert (before.standard.input, after.standard.input) == (Decimal("10.00"), Decimal("2.00"))
    assert catalogue.find("o3", datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_lookup_by_provider_prefix_and_unknown(catalogue: Catalogue) -> None:
    assert catalogue.canonical("openai/gpt-4.1-mini") == "gpt-4.1-mini"
    assert catalogue.find("gpt-17", NOW) is None


@pytest.mark.parametrize(("row", "message"), [
    ({"input": "1", "output": "2", "cached_input": "3"}, "field 'cached_input' (3) exceeds 'input' (1)"),
    ({"input": "1", "output": "2", "cache_write_5m": "0.5"}, "field 'cache_write_5m' (0.5) is below 'input' (1)"),
    ({"input": "1", "output": "2", "batch_output": "3"}, "field 'batch_output' (3) exceeds 'output' (2)"),
    ({"input": "-1", "output": "2"}, "field 'input' must be a finite number >= 0"),
    ({"input": "x", "output": "2"}, "field 'input' is not a number"),
    ({"output": "2"}, "field 'input' is missing"),
])
def test_validation_names_model_and_field(row: dict[str, str], message: str) -> None:
    with pytest.raises(PriceError) as info:
        parse_model({"model": "m1", "prices": [{"effective_from": "2025-01-01", **row}]}, where="t")
    assert "(m1)" in info.value.message and message in info.value.message


def test_litellm_import_rejects_bad_rows() -> None:
    data = {
        "sample_spec": {"input_cost_per_token": 0},
        "good-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                       "cache_read_input_token_cost": 1e-07, "litellm_provider": "openai", "mode": "chat"},
        "bad-cache": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                      "cache_read_input_token_cost": 5e-06, "mode": "chat"},
        "embedder": {"input_cost_per_token": 1e-08, "mode": "embedding"},
    }
    result = convert(data, effective_from=NOW.date())
    assert [e["model"] for e in result.entries] == ["good-model"]
    assert result.entries[0]["prices"][0]["input"] == "1" and result.entries[0]["prices"][0]["cached_input"] == "0.1"
    assert len(result.rejected) == 1 and "(bad-cache)" in result.rejected[0] and "cached_input" in result.rejected[0]
    assert result.skipped == 1


def test_prices_cli_lists_imports_and_overrides(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"TOKENOMY_HOME": str(tmp_path)}
    listed = runner.invoke(prices_group, ["--json"], env=env)
    assert listed.exit_code == 0 and any(row["model"] == "gpt-4o" for row in json.loads(listed.output))
    src = tmp_path / "litellm.json"
    src.write_text(json.dumps({"my-model": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                                            "mode": "chat"}}))
    imported = runner.invoke(prices_group, ["import", str(src)], env=env)
    assert imported.exit_code == 0, imported.output
    one = runner.invoke(prices_group, ["--json", "my-model"], env=env)
    assert json.loads(one.output)["usd_per_mtok"]["output"] == "15"
