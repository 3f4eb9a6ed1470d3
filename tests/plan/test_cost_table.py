"""The seed's cost table, row by row: each verdict recomputed from the catalogues, and each verdict's rule checked
on both sides of its boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tokenomy.plan.apis import planner_catalogue
from tokenomy.plan.cost_table import api_row, cost_table, selfhost_row
from tokenomy.plan.data import Throughput, load_gpus, load_throughput

NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module")
def table() -> dict[str, object]:
    gpus = load_gpus()
    claims = cost_table(planner_catalogue(), load_throughput(None, gpus), gpus, NOW, 0.7)
    return {c.claim.split(" ~")[0]: c for c in claims}


def test_the_five_rows_and_their_verdicts(table) -> None:  # type: ignore[no-untyped-def]
    assert list(table) == ["GPT-4 Turbo", "Claude 3.5 Sonnet", "fine-tuned 7B on a self-hosted A100",
                           "quantised 13B on spot instances", "Phi-3 on CPU"]
    turbo, sonnet = table["GPT-4 Turbo"], table["Claude 3.5 Sonnet"]
    assert turbo.status == "qualified" and turbo.computed["blended_usd_per_mtok"] == 15.0  # (1500x10 + 500x30)/2000
    assert sonnet.status == "qualified" and sonnet.computed["blended_usd_per_mtok"] == 6.0  # (1500x3 + 500x15)/2000
    assert "output tokens" in turbo.verdict and "output tokens" in sonnet.verdict
    a100 = table["fine-tuned 7B on a self-hosted A100"]
    # 8B fp16 A100 row: 1500/7800 + 500/3363 s per request -> 5,865 tokens/s; $1.49/h -> $0.0706 per 1M fully busy
    assert a100.computed["usd_per_mtok_fully_busy"] == pytest.approx(0.0706, abs=1e-3)
    assert a100.status == "qualified" and 0.1 < float(a100.computed["utilisation_for_claimed_figure"]) < 0.2
    spot = table["quantised 13B on spot instances"]
    assert spot.status == "qualified" and "spot" in str(spot.computed["price"])
    phi3 = table["Phi-3 on CPU"]
    assert phi3.status == "does not hold" and float(phi3.computed["usd_per_mtok_fully_busy"]) > 1.0
    assert float(phi3.computed["smollm2_135m_spot_prompt_only_usd_per_mtok"]) < 0.03


def test_api_rule_on_both_sides() -> None:
    catalogue = planner_catalogue()
    assert api_row(catalogue, NOW, "gpt-4-turbo", "GPT-4 Turbo", 15.0).status == "holds"
    assert api_row(catalogue, NOW, "gpt-4-turbo", "GPT-4 Turbo", 10.0).status == "qualified"  # the input rate
    assert api_row(catalogue, NOW, "gpt-4-turbo", "GPT-4 Turbo", 100.0).status == "does not hold"
    assert api_row(catalogue, NOW, "no-such-model", "X", 1.0).status == "unchecked"


def test_selfhost_rule_on_both_sides() -> None:
    row = Throughput("8B", "", "fp16", "A100", 1, decode_tokens_per_s=2000, prefill_tokens_per_s=2000,
                     concurrency=64, source="test", estimate=True)
    price = Decimal("7.2")  # 2,000 tokens/s = 7.2M tokens/h -> $1.00 per 1M fully busy, $2.00 at 50 %
    assert selfhost_row("x", row, price, "test", 2.0, 0.5).status == "holds"
    qualified = selfhost_row("x", row, price, "test", 4.0, 0.5)
    assert qualified.status == "qualified" and qualified.computed["utilisation_for_claimed_figure"] == 0.25
    assert selfhost_row("x", row, price, "test", 0.5, 0.5).status == "does not hold"
    assert selfhost_row("x", None, price, "test", 0.5, 0.5).status == "unchecked"
