"""Exact cost for every provider's usage shape, against hand arithmetic on the catalogue's published prices.

Each expected figure is written as µ$ (tokens × USD per million tokens), then divided by 10⁶: exact Decimals,
compared with ``==`` and checked to be Decimal, never float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tokenomy.pricing import Catalogue, TokenUsage, UsageError, cost_breakdown, cost_usd, normalise_usage
from tokenomy.providers.anthropic_translate import openai_usage

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def _cost(catalogue: Catalogue, kind: str, model: str, usage: dict[str, Any], *, at: datetime = NOW,
          batch: bool = False) -> Decimal:
    cost = cost_usd(catalogue.price_for(model, at), normalise_usage(kind, usage), batch=batch)
    assert isinstance(cost, Decimal)
    return cost


# --- OpenAI -----------------------------------------------------------------------------------------------------


def test_openai_cached_tokens_are_inside_prompt_tokens(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
             "prompt_tokens_details": {"cached_tokens": 1536}}
    assert normalise_usage("openai", usage) == TokenUsage(input_tokens=464, cached_read_tokens=1536, output_tokens=300)
    # gpt-4o ($2.50 in, $1.25 cached, $10 out): 464 × 2.50 + 1536 × 1.25 + 300 × 10 = 1160 + 1920 + 3000 = 6080 µ$
    assert _cost(catalogue, "openai", "gpt-4o-2024-08-06", usage) == Decimal("0.006080")


def test_openai_reasoning_tokens_are_part_of_output(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 800}}
    tokens = normalise_usage("openai", usage)
    assert (tokens.output_tokens, tokens.reasoning_tokens) == (1000, 800)
    # o4-mini ($1.10 in, $4.40 out): 100 × 1.10 + 1000 × 4.40 = 110 + 4400 = 4510 µ$ (reasoning not added again)
    assert _cost(catalogue, "openai", "o4-mini", usage) == Decimal("0.004510")


def test_openai_responses_api_shape(catalogue: Catalogue) -> None:
    usage = {"input_tokens": 10_000, "input_tokens_details": {"cached_tokens": 8000}, "output_tokens": 500,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10_500}
    # gpt-4.1 ($2 in, $0.50 cached, $8 out): 2000 × 2 + 8000 × 0.50 + 500 × 8 = 4000 + 4000 + 4000 = 12000 µ$
    assert _cost(catalogue, "openai", "gpt-4.1", usage) == Decimal("0.012")


def test_openai_compatible_local_tier_costs_nothing(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 5000, "completion_tokens": 700}
    assert _cost(catalogue, "local", "smollm2-135m-instruct", usage) == 0


# --- Anthropic --------------------------------------------------------------------------------------------------


def test_anthropic_input_excludes_cache_and_writes_split_5m_1h(catalogue: Catalogue) -> None:
    # the usage exactly as the gateway's Anthropic translation hands it over
    usage = openai_usage({"input_tokens": 100, "cache_read_input_tokens": 10_000, "cache_creation_input_tokens": 3000,
                          "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
                          "output_tokens": 500})
    assert usage["prompt_tokens"] == 13_100  # the OpenAI view counts everything once...
    assert normalise_usage("anthropic", usage) == TokenUsage(  # ...and the split bills every kind once
        input_tokens=100, cached_read_tokens=10_000, cache_write_5m_tokens=1000, cache_write_1h_tokens=2000,
        output_tokens=500)
    # claude-sonnet-4-5 ($3 in, $0.30 read, $3.75 5m, $6 1h, $15 out):
    # 100 × 3 + 10000 × 0.30 + 1000 × 3.75 + 2000 × 6 + 500 × 15 = 300 + 3000 + 3750 + 12000 + 7500 = 26550 µ$
    assert _cost(catalogue, "anthropic", "claude-sonnet-4-5-20250929", usage) == Decimal("0.02655")


def test_anthropic_writes_without_split_are_5m(catalogue: Catalogue) -> None:
    raw = {"input_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0, "output_tokens": 20}
    assert normalise_usage("anthropic", raw).cache_write_5m_tokens == 2000
    # claude-haiku-4-5 ($1 in, $1.25 5m write, $5 out): 10 × 1 + 2000 × 1.25 + 20 × 5 = 10 + 2500 + 100 = 2610 µ$
    assert _cost(catalogue, "anthropic", "claude-haiku-4-5", raw) == Decimal("0.00261")
    assert _cost(catalogue, "anthropic", "claude-haiku-4-5", openai_usage(raw)) == Decimal("0.00261")


def test_anthropic_long_context_counts_cached_tokens_towards_threshold(catalogue: Catalogue) -> None:
    over = {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000}
    # 210,000 prompt tokens > 200k, so every token at the long-context rates ($6 in, $0.60 read, $22.50 out):
    # 150000 × 6 + 60000 × 0.60 + 1000 × 22.50 = 900000 + 36000 + 22500 = 958500 µ$
    price = catalogue.price_for("claude-sonnet-4-5", NOW)
    assert cost_breakdown(price, normalise_usage("anthropic", over)).long_context
    assert _cost(catalogue, "anthropic", "claude-sonnet-4-5", over) == Decimal("0.9585")
    at_threshold = {"input_tokens": 140_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000}
    # exactly 200,000 is not over: 140000 × 3 + 60000 × 0.30 + 1000 × 15 = 420000 + 18000 + 15000 = 453000 µ$
    assert _cost(catalogue, "anthropic", "claude-sonnet-4-5", at_threshold) == Decimal("0.453")


def test_anthropic_batch_discounts_cache_tokens_too(catalogue: Catalogue) -> None:
    raw = {"input_tokens": 1000, "cache_read_input_tokens": 10_000, "cache_creation_input_tokens": 2000,
           "output_tokens": 1000}
    # claude-sonnet-4-5 batch ($1.50 in, $7.50 out; reads and writes half price: $0.15, $1.875):
    # 1000 × 1.50 + 10000 × 0.15 + 2000 × 1.875 + 1000 × 7.50 = 1500 + 1500 + 3750 + 7500 = 14250 µ$
    assert _cost(catalogue, "anthropic", "claude-sonnet-4-5", raw, batch=True) == Decimal("0.01425")


# --- Gemini -----------------------------------------------------------------------------------------------------


def test_gemini_native_usage_metadata(catalogue: Catalogue) -> None:
    usage = {"promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 50,
             "thoughtsTokenCount": 150, "totalTokenCount": 1200}
    assert normalise_usage("gemini", usage) == TokenUsage(input_tokens=600, cached_read_tokens=400, output_tokens=200,
                                                          reasoning_tokens=150)
    # gemini-2.5-flash on 2026-11-25 (genai-prices: $0.30 in, $0.03 cached, $2.50 out incl. thinking):
    # 600 × 0.30 + 400 × 0.03 + 200 × 2.50 = 180 + 12 + 500 = 692 µ$
    assert _cost(catalogue, "gemini", "gemini-2.5-flash", usage) == Decimal("0.000692")
    # on 2025-07-01 our checked row ($0.075 cached) is in force: 180 + 400 × 0.075 + 500 = 710 µ$
    july = datetime(2025, 7, 1, tzinfo=UTC)
    assert _cost(catalogue, "gemini", "gemini-2.5-flash", usage, at=july) == Decimal("0.00071")


def test_gemini_pro_long_context_tier(catalogue: Catalogue) -> None:
    usage = {"promptTokenCount": 250_000, "candidatesTokenCount": 2000, "toolUsePromptTokenCount": 1000}
    # 250,000 prompt tokens > 200k: gemini-2.5-pro long tier ($2.50 in, $15 out), tool-use prompt billed as input:
    # 251000 × 2.50 + 2000 × 15 = 627500 + 30000 = 657500 µ$
    assert _cost(catalogue, "gemini", "gemini/gemini-2.5-pro", usage) == Decimal("0.6575")


def test_gemini_openai_compatible_shape_missing_thoughts_from_completion(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 21, "completion_tokens": 0, "total_tokens": 81,
             "completion_tokens_details": {"reasoning_tokens": 60}}
    assert normalise_usage("gemini", usage).output_tokens == 60
    # gemini-2.5-flash: 21 × 0.30 + 60 × 2.50 = 6.3 + 150 = 156.3 µ$
    assert _cost(catalogue, "gemini", "gemini-2.5-flash", usage) == Decimal("0.0001563")


# --- DeepSeek ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "expected"), [
    # since 2025-09-29 ($0.28 miss, $0.028 hit, $0.42 out): 200 × 0.28 + 800 × 0.028 + 100 × 0.42 = 56 + 22.4 + 42
    (NOW, Decimal("0.0001204")),
    # 2025-08-01 ($0.27 miss, $0.07 hit, $1.10 out): 200 × 0.27 + 800 × 0.07 + 100 × 1.10 = 54 + 56 + 110 = 220 µ$
    (datetime(2025, 8, 1, tzinfo=UTC), Decimal("0.00022")),
    # 2025-09-10 ($0.56 miss, $0.07 hit, $1.68 out): 200 × 0.56 + 800 × 0.07 + 100 × 1.68 = 112 + 56 + 168 = 336 µ$
    (datetime(2025, 9, 10, tzinfo=UTC), Decimal("0.000336")),
])
def test_deepseek_cache_hit_and_miss_at_the_price_in_force(catalogue: Catalogue, at: datetime,
                                                           expected: Decimal) -> None:
    usage = {"prompt_tokens": 1000, "prompt_cache_hit_tokens": 800, "prompt_cache_miss_tokens": 200,
             "completion_tokens": 100, "total_tokens": 1100}
    assert _cost(catalogue, "deepseek", "deepseek-chat", usage, at=at) == expected
    # DeepSeek reached through a generic OpenAI-compatible deployment is read the same way
    assert _cost(catalogue, "openai_compatible", "deepseek-chat", usage, at=at) == expected


# --- batch, sums, bad input -------------------------------------------------------------------------------------


def test_openai_batch_prices(catalogue: Catalogue) -> None:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    # gpt-4o-mini batch: 1M × $0.075 + 1M × $0.30
    assert _cost(catalogue, "openai", "gpt-4o-mini", usage, batch=True) == Decimal("0.375")


def test_sums_stay_exact(catalogue: Catalogue) -> None:
    price = catalogue.price_for("deepseek-chat", NOW)
    one = cost_usd(price, TokenUsage(cached_read_tokens=1))  # 1 × $0.028 / 10⁶
    total = sum((one for _ in range(10_000)), Decimal(0))
    assert total == Decimal("0.00028")  # 10,000 × 0.000000028; a float sum would not be
    usage = sum((TokenUsage(input_tokens=1, output_tokens=2, reasoning_tokens=1) for _ in range(3)), TokenUsage())
    assert usage == TokenUsage(input_tokens=3, output_tokens=6, reasoning_tokens=3) and usage.prompt_tokens == 3


@pytest.mark.parametrize(("kind", "usage", "param"), [
    ("openai", {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}},
     "usage.prompt_tokens_details.cached_tokens"),
    ("openai", {"prompt_tokens": "10"}, "usage.prompt_tokens"),
    ("openai", {"prompt_tokens": -1}, "usage.prompt_tokens"),
    ("openai", {"completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 6}},
     "usage.completion_tokens_details.reasoning_tokens"),
    ("anthropic", {"anthropic": {"input_tokens": 1.5}}, "usage.input_tokens"),
    ("gemini", {"promptTokenCount": 5, "cachedContentTokenCount": 6}, "usage.cachedContentTokenCount"),
    ("deepseek", {"prompt_tokens": 5, "prompt_cache_hit_tokens": 6}, "usage.prompt_cache_hit_tokens"),
])
def test_malformed_usage_is_an_error_not_a_guess(kind: str, usage: dict[str, Any], param: str) -> None:
    with pytest.raises(UsageError) as info:
        normalise_usage(kind, usage)
    assert info.value.param == param and kind in info.value.message


def test_token_usage_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="input_tokens"):
        TokenUsage(input_tokens=-1)
    with pytest.raises(ValueError, match="reasoning_tokens"):
        TokenUsage(output_tokens=1, reasoning_tokens=2)
