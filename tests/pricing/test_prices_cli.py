"""`tokenomy prices` and `tokenomy prices import`: the click group through CliRunner (and once as a user runs it),
and the LiteLLM conversion it uses, which keeps good rows and rejects bad ones naming model and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokenomy.cli.prices_cmd import prices_group
from tokenomy.pricing import Catalogue, PriceError
from tokenomy.pricing.litellm_prices import convert

LITELLM: dict[str, Any] = {
    "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0, "mode": "chat"},
    "good-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "cache_read_input_token_cost": 1e-07,
                   "input_cost_per_token_batches": 5e-07, "litellm_provider": "openai", "mode": "chat"},
    "claude-like": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                    "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06,
                    "cache_read_input_token_cost": 3e-07, "input_cost_per_token_above_200k_tokens": 6e-06,
                    "output_cost_per_token_above_200k_tokens": 2.25e-05, "litellm_provider": "anthropic",
                    "mode": "chat"},
    "together_ai/some/model": {"input_cost_per_token": 8.8e-07, "output_cost_per_token": 8.8e-07,
                               "litellm_provider": "together_ai", "mode": "chat"},
    "bad-cache": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "cache_read_input_token_cost": 5e-06,
                  "litellm_provider": "openai", "mode": "chat"},
    "bad-batch": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "output_cost_per_token_batches": 4e-06,
                  "litellm_provider": "openai", "mode": "chat"},
    "bad-number": {"input_cost_per_token": "free", "output_cost_per_token": 2e-06, "litellm_provider": "openai",
                   "mode": "chat"},
    "no-output": {"input_cost_per_token": 1e-06, "litellm_provider": "openai", "mode": "chat"},
    "embedder": {"input_cost_per_token": 1e-08, "litellm_provider": "openai", "mode": "embedding"},
    "per-second": {"input_cost_per_second": 1e-04, "litellm_provider": "openai", "mode": "chat"},
}
DAY = date(2026, 11, 25)


def test_litellm_conversion_keeps_good_rows_and_names_bad_ones() -> None:
    result = convert(json.loads(json.dumps(LITELLM), parse_float=Decimal), effective_from=DAY, origin="l.json")
    good = {e.name: e for e in result.entries}
    assert set(good) == {"good-model", "claude-like", "together/some/model"}
    row = good["good-model"].rows[0]
    # per-token figures × 10⁶, exactly: 1e-06 → 1, 1e-07 → 0.1, 5e-07 → 0.5
    assert (row.input, row.output, row.cached_input, row.batch_input, row.batch_output) == (
        Decimal(1), Decimal(2), Decimal("0.1"), Decimal("0.5"), Decimal(2))
    assert (row.effective_from, row.verified) == (DAY, False)
    claude = good["claude-like"].rows[0]
    assert (claude.cache_write_5m, claude.cache_write_1h) == (Decimal("3.75"), Decimal(6))
    assert claude.long_context is not None and claude.long_context.threshold_tokens == 200_000
    assert (claude.long_context.input, claude.long_context.output) == (Decimal(6), Decimal("22.5"))
    assert good["together/some/model"].provider == "together"
    rejected = sorted(result.rejected)
    assert len(rejected) == 4
    assert "model 'bad-batch'" in rejected[0] and "field 'batch_output' (4) exceeds 'output' (2)" in rejected[0]
    assert "(LiteLLM field 'output_cost_per_token_batches')" in rejected[0]
    assert "model 'bad-cache'" in rejected[1] and "field 'cached_input' (5) exceeds 'input' (1)" in rejected[1]
    assert "(LiteLLM field 'cache_read_input_token_cost')" in rejected[1]
    assert "model 'bad-number'" in rejected[2] and "field 'input_cost_per_token' is not a number" in rejected[2]
    assert "model 'no-output'" in rejected[3] and "field 'output' is missing" in rejected[3]
    assert result.skipped == 3  # sample_spec, the embedding model, the per-second model


def test_litellm_conversion_filters_by_provider_and_refuses_a_non_map() -> None:
    result = convert(LITELLM, effective_from=DAY, origin="l.json", providers=["anthropic"])
    assert [e.name for e in result.entries] == ["claude-like"] and result.rejected == []
    with pytest.raises(PriceError, match="a LiteLLM price file is a JSON object"):
        convert([], effective_from=DAY, origin="l.json")


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"TOKENOMY_HOME": str(tmp_path / "home")}


def test_prices_lists_the_catalogue_as_json(home: dict[str, str]) -> None:
    result = CliRunner().invoke(prices_group, ["--json"], env=home)
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert len(rows) > 2_000  # every model of the genai-prices snapshot and our own rows
    assert rows["openai/gpt-4o"]["input"] == "2.5" and rows["openai/gpt-4o"]["unit"] == "USD per 1M tokens"
    tier = rows["anthropic/claude-sonnet-4-5"]["long_context"]
    assert (tier["threshold_tokens"], tier["output"], tier["batch_output"]) == (200_000, "22.5", "11.25")
    assert rows["deepseek/deepseek-chat"]["cached_input"] == "0.028"  # our row in force now
    assert rows["smollm2-135m-instruct"]["verified"] is True
    only = CliRunner().invoke(prices_group, ["--json", "--provider", "groq"], env=home)
    assert {row["provider"] for row in json.loads(only.stdout)} == {"groq"}


def test_prices_model_and_at(home: dict[str, str]) -> None:
    runner = CliRunner()
    one = runner.invoke(prices_group, ["--json", "gpt-4o-2024-08-06"], env=home)
    assert one.exit_code == 0, one.output
    body = json.loads(one.stdout)
    assert (body["model"], body["asked"], body["input"], body["output"]) == (
        "openai/gpt-4o", "gpt-4o-2024-08-06", "2.5", "10")
    old = runner.invoke(prices_group, ["--at", "2025-05-01", "o3", "--json"], env=home)
    assert old.exit_code == 0 and json.loads(old.stdout)["input"] == "10.00"
    table = runner.invoke(prices_group, ["claude-haiku-4-5"], env={**home, "COLUMNS": "200"})
    assert table.exit_code == 0 and "anthropic/claude-haiku-4-5" in table.stdout and "1.25/2" in table.stdout
    missing = runner.invoke(prices_group, ["gpt-17"], env=home)
    assert isinstance(missing.exception, PriceError) and "no price for model 'gpt-17'" in str(missing.exception)


def test_import_writes_the_override_that_load_then_reads(tmp_path: Path, home: dict[str, str]) -> None:
    source = tmp_path / "model_prices_and_context_window.json"
    source.write_text(json.dumps({**LITELLM, "gpt-4o": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06,
                                                        "litellm_provider": "openai", "mode": "chat"}}))
    runner = CliRunner()
    result = runner.invoke(prices_group, ["import", str(source), "--effective-from", "2026-12-01"], env=home)
    assert result.exit_code == 0, result.output
    override = Path(home["TOKENOMY_HOME"]) / "prices.json"
    assert f"imported 4 models, rejected 4, skipped 3 (not chat, not priced per token) -> {override}" in result.stdout
    assert result.stderr.count("rejected: ") == 4 and "model 'bad-cache'" in result.stderr
    catalogue = Catalogue.load(override)
    assert catalogue.price_for("good-model", datetime(2026, 12, 1, tzinfo=UTC)).cached_input == Decimal("0.1")
    # an imported row for a known model applies from its date; calls before it keep the packaged price
    assert catalogue.price_for("gpt-4o", datetime(2026, 11, 30, tzinfo=UTC)).input == Decimal("2.5")
    assert catalogue.price_for("gpt-4o", datetime(2026, 12, 1, tzinfo=UTC)).input == Decimal(2)
    listed = runner.invoke(prices_group, ["--json", "--at", "2026-12-02", "good-model"], env=home)
    assert json.loads(listed.stdout)["source"] == f"imported from LiteLLM's price file {source.name} on 2026-12-01"
    # importing again merges into the same file instead of replacing it
    again = runner.invoke(prices_group, ["import", str(source), "--provider", "anthropic", "--new-only"], env=home)
    assert again.exit_code == 0 and "imported 0 models" in again.stdout
    assert Catalogue.load(override).find("good-model", datetime(2026, 12, 2, tzinfo=UTC)) is not None


def test_import_to_out_leaves_the_data_dir_alone(tmp_path: Path, home: dict[str, str]) -> None:
    source = tmp_path / "litellm.json"
    source.write_text(json.dumps({"only-model": LITELLM["good-model"]}))
    out = tmp_path / "review" / "prices.json"
    result = CliRunner().invoke(prices_group, ["import", str(source), "--out", str(out)], env=home)
    assert result.exit_code == 0, result.output
    assert [m["model"] for m in json.loads(out.read_text())["models"]] == ["only-model"]
    assert not (Path(home["TOKENOMY_HOME"]) / "prices.json").exists()


def test_prices_as_a_user_runs_it(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TOKENOMY_HOME": str(tmp_path / "h")}
    ok = subprocess.run([sys.executable, "-m", "tokenomy", "prices", "--json", "gpt-4o"], capture_output=True,
                        text=True, timeout=60, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["input"] == "2.5"
    bad = subprocess.run([sys.executable, "-m", "tokenomy", "prices", "gpt-17"], capture_output=True, text=True,
                         timeout=60, env=env, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no price for model 'gpt-17'")
    assert "Traceback" not in bad.stderr
