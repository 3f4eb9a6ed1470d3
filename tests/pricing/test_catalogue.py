"""The catalogue: validation that names model and field, the row in force by date, lookups, override merging, and
the packaged data's own invariants (Anthropic's multipliers, batch at half price)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokenomy.pricing import Catalogue, PriceError, UnknownPriceError
from tokenomy.pricing.catalogue import PACKAGED, read_document
from tokenomy.pricing.price import entry_document, parse_model

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _entry(**row: Any) -> dict[str, Any]:
    return {"model": "m1", "provider": "p", "prices": [{"effective_from": "2025-01-01", "input": "1",
                                                         "output": "2", **row}]}


@pytest.mark.parametrize(("row", "field", "message"), [
    ({"cached_input": "3"}, "cached_input", "field 'cached_input' (3) exceeds 'input' (1)"),
    ({"cache_write_5m": "0.5"}, "cache_write_5m", "field 'cache_write_5m' (0.5) is below 'input' (1)"),
    ({"cache_write_5m": "1.25", "cache_write_1h": "1.1"}, "cache_write_1h",
     "field 'cache_write_1h' (1.1) is below 'cache_write_5m' (1.25)"),
    ({"batch_input": "2"}, "batch_input", "field 'batch_input' (2) exceeds 'input' (1)"),
    ({"batch_output": "3"}, "batch_output", "field 'batch_output' (3) exceeds 'output' (2)"),
    ({"input": "-1"}, "input", "field 'input' must be a finite number >= 0"),
    ({"input": "NaN"}, "input", "field 'input' must be a finite number >= 0"),
    ({"input": "x"}, "input", "field 'input' is not a number"),
    ({"input": 0.5}, "input", "field 'input' must be a decimal string or integer, got 0.5"),
    ({"output": None}, "output", "field 'output' is missing"),
    ({"cache_read": "0.1"}, "cache_read", "unknown field 'cache_read'"),
    ({"verified": "yes"}, "verified", "field 'verified' must be true or false"),
    ({"effective_from": "2025-13-01"}, "effective_from", "field 'effective_from' must be a YYYY-MM-DD date"),
    ({"long_context": {"threshold_tokens": 200_000, "input": "0.5", "output": "3"}}, "long_context.input",
     "field 'long_context.input' (0.5) is below 'input' (1)"),
    ({"long_context": {"threshold_tokens": 0, "input": "2", "output": "3"}}, "long_context.threshold_tokens",
     "field 'long_context.threshold_tokens' must be a positive integer"),
    ({"long_context": {"threshold_tokens": 10, "input": "2", "output": "3", "cached_input": "2.5"}},
     "long_context.cached_input", "field 'long_context.cached_input' (2.5) exceeds 'long_context.input' (2)"),
])
def test_validation_names_model_and_field(row: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(PriceError) as info:
        parse_model(_entry(**row), "test.json")
    error = info.value
    assert (error.model, error.field) == ("m1", field)
    assert error.message.startswith("test.json: model 'm1'") and message in error.message


def test_two_rows_on_one_date_are_rejected() -> None:
    entry = _entry()
    entry["prices"].append(dict(entry["prices"][0]))
    with pytest.raises(PriceError, match="two rows share effective_from 2025-01-01") as info:
        parse_model(entry, "t")
    assert info.value.field == "effective_from"


def test_a_name_used_by_two_models_is_rejected() -> None:
    doc = {"models": [{**_entry(), "aliases": ["shared"]}, {**_entry(), "model": "m2", "aliases": ["SHARED"]}]}
    with pytest.raises(PriceError, match="name 'SHARED' is already used by model 'm1'") as info:
        Catalogue.from_documents([(doc, "t")])
    assert (info.value.model, info.value.field) == ("m2", "aliases")


def test_omitted_rates_default_to_what_a_provider_without_them_charges() -> None:
    price = Catalogue.from_documents([({"models": [_entry(cache_write_5m="1.25")]}, "t")]).price_for("m1", NOW)
    assert (price.cached_input, price.cache_write_1h, price.batch_input, price.batch_output) == (
        Decimal(1), Decimal("1.25"), Decimal(1), Decimal(2))


def test_effective_dates_pick_the_row_in_force() -> None:
    catalogue = Catalogue.load()
    assert catalogue.price_for("o3", datetime(2025, 6, 9, 23, 59, tzinfo=UTC)).input == Decimal("10.00")
    assert catalogue.price_for("o3", datetime(2025, 6, 10, tzinfo=UTC)).input == Decimal("2.00")
    # 2025-06-09 23:30 in New York is already 2025-06-10 in UTC; a naive datetime is taken as UTC
    assert catalogue.price_for("o3", datetime(2025, 6, 9, 23, 30, tzinfo=timezone(timedelta(hours=-5)))).input == 2
    assert catalogue.price_for("o3", datetime(2025, 6, 9, 23, 30)).input == 10
    # genai-prices' first price has no start date: it prices every earlier call (dated 1970-01-01)
    assert catalogue.price_for("o3", datetime(2024, 1, 1, tzinfo=UTC)).effective_from.isoformat() == "1970-01-01"
    dated = Catalogue.from_documents([({"models": [_entry()]}, "t")])
    assert dated.find("m1", datetime(2024, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(UnknownPriceError, match="no price for model 'm1' on 2024-01-01: its first price is from "
                                                "2025-01-01"):
        dated.price_for("m1", datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("asked", "found"), [
    ("gpt-4o", "openai/gpt-4o"), ("GPT-4o", "openai/gpt-4o"), ("openai/gpt-4o", "openai/gpt-4o"),
    ("gpt-4o-2024-08-06", "openai/gpt-4o"),
    ("gpt-4o-2024-05-13", "openai/gpt-4o-2024-05-13"),  # its own (older, dearer) price, not the family's
    ("openrouter/openai/gpt-4.1-mini", "openrouter/openai/gpt-4.1-mini"),  # OpenRouter's own row
    ("gpt-4.1-mini-2025-04-14", "openai/gpt-4.1-mini"),
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
    ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-0"),
    ("claude-opus-4-1@20250805", "anthropic/claude-opus-4-1"),
    ("anthropic/claude-haiku-4-5", "anthropic/claude-haiku-4-5"),
    ("together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),  # our own row
    ("mistral-large-2411", "mistral/mistral-large"), ("smollm2-135m-instruct", "smollm2-135m-instruct"),
])
def test_lookups_accept_provider_prefixes_aliases_and_dated_snapshots(asked: str, found: str) -> None:
    assert Catalogue.load().price_for(asked, NOW).model == found


def test_dated_snapshots_fall_back_only_where_the_data_says_so() -> None:
    catalogue = Catalogue.load()
    assert catalogue.find("gpt-4o-2025-01-01", NOW) is None  # gpt-4o lists its snapshots: an unknown one is unknown
    assert catalogue.find("gpt-4.1-2026-01-01", NOW) is not None  # gpt-4.1's rule accepts any dated snapshot
    own = Catalogue.from_documents([({"models": [{**_entry(), "dated_snapshots": True}]}, "t")])
    assert own.price_for("m1-2025-06-01", NOW).model == "m1"
    assert own.price_for("vendor/m1@20250601", NOW).model == "m1"
    with pytest.raises(UnknownPriceError, match="no price for model 'gpt-17'"):
        catalogue.price_for("gpt-17", NOW)


def test_override_rows_merge_by_model_and_date(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": [
        {"model": "claude-sonnet-4-5-20250929", "prices": [  # a dated snapshot folds into its family
            {"effective_from": "2026-12-01", "input": "2", "output": "10", "cached_input": "0.2",
             "cache_write_5m": "2.5", "cache_write_1h": "4"}]},
        {"model": "my-finetune", "provider": "vllm", "prices": [{"effective_from": "2026-01-01", "input": "0.1",
                                                                  "output": "0.2"}]}]}))
    catalogue = Catalogue.load(override)
    assert catalogue.price_for("claude-sonnet-4-5", NOW).input == Decimal("3.00")  # before the override's date
    after = catalogue.price_for("claude-sonnet-4-5", datetime(2026, 12, 2, tzinfo=UTC))
    assert (after.input, after.model, after.provider) == (Decimal(2), "anthropic/claude-sonnet-4-5", "anthropic")
    assert catalogue.price_for("my-finetune", NOW).output == Decimal("0.2")
    assert Catalogue.load(tmp_path / "missing.json").find("my-finetune", NOW) is None


def test_a_bad_override_file_is_one_error_naming_the_file(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text('{"models": [{"model": "x", "prices": [{"effective_from": "2026-01-01", "input": "1", '
                        '"output": "1", "batch_output": "2"}]}]}')
    with pytest.raises(PriceError, match=f"{override}: model 'x' from 2026-01-01: field 'batch_output'"):
        Catalogue.load(override)
    override.write_text("{not json")
    with pytest.raises(PriceError, match="cannot read prices from"):
        Catalogue.load(override)


def test_packaged_catalogue_invariants() -> None:
    catalogue = Catalogue.load()
    entries = {e.name: e for e in catalogue.entries()}
    assert len(entries) > 2_000 and catalogue.sources == ["genai-prices 0.2.5 (packaged)"]
    assert {"openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/o3", "openai/gpt-5", "openai/gpt-4-turbo",
            "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-1", "anthropic/claude-haiku-4-5",
            "google/gemini-2.5-pro", "google/gemini-2.5-flash", "deepseek/deepseek-chat", "mistral/mistral-large",
            "groq/llama-3.3-70b-versatile", "aws/regional.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "smollm2-135m-instruct"} <= set(entries)
    for entry in entries.values():
        for row in entry.rows:
            assert row.source, (entry.name, row.effective_from)
            if row.verified and entry.provider == "anthropic":  # 5m writes 1.25x, 1h 2x, reads 0.1x, batch 0.5x
                assert (row.cache_write_5m, row.cache_write_1h, row.cached_input, row.batch_input * 2) == (
                    row.input * Decimal("1.25"), row.input * 2, row.input / 10, row.input), entry.name
    local = catalogue.price_for("smollm2-135m-instruct", NOW)
    assert (local.input, local.output, local.verified) == (0, 0, True)
    # our checked rows win over the snapshot's from their date: o3's launch price, then its June 2025 cut
    o3 = entries["openai/o3"]
    assert [(r.effective_from.isoformat(), r.input) for r in o3.rows][:3] == [
        ("1970-01-01", Decimal(10)), ("2025-04-16", Decimal("10.00")), ("2025-06-10", Decimal("2.00"))]


def test_entries_round_trip_through_the_document_format() -> None:
    original = Catalogue.load()
    document = {"models": [entry_document(e) for e in original.entries()]}
    again = Catalogue.from_documents([(json.loads(json.dumps(document), parse_float=Decimal), "round trip")])
    assert again.entries() == original.entries()
    assert read_document(PACKAGED)["models"]  # the packaged file reads with Decimal numbers


def test_an_override_for_a_reseller_stays_the_resellers(tmp_path: Path) -> None:
    """genai-prices sends `azure/gpt-4o` to OpenAI's gpt-4o (Azure resells it); an override row named so is Azure's
    own price and must not change OpenAI's."""
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": [{"model": "azure/gpt-4o", "provider": "azure", "prices": [
        {"effective_from": "2026-01-01", "input": "2.75", "output": "11"}]}]}))
    catalogue = Catalogue.load(override)
    assert catalogue.price_for("azure/gpt-4o", NOW).input == Decimal("2.75")
    assert catalogue.price_for("gpt-4o", NOW).input == Decimal("2.5")
    assert catalogue.price_for("azure/gpt-4o-2024-08-06", NOW).model == "openai/gpt-4o"  # no Azure row for it
