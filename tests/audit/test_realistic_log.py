"""The audit of a realistic log (real arrival times and token counts from the Azure LLM inference trace 2023; dated
model names with provider prefixes; tests/audit/realistic_log.py) against a hand computation made from the trace's
CSV rows and the providers' published prices typed here, not read from the catalogue."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from tests.audit import realistic_log
from tests.audit.realistic_log import DATA, SHIFT_DAYS, UNPRICED, TraceRow, model_of

from tokenomy.audit.html import render_html
from tokenomy.cli.main import cli

# USD per 1M tokens (input, output), from the providers' price pages; Azure prices OpenAI's models the same, and
# Bedrock and Vertex AI price Claude 3.5 Sonnet v2 as Anthropic does
PUBLISHED = {"gpt-4-turbo-2024-04-09": (Decimal(10), Decimal(30)), "gpt-4o-2024-08-06": (Decimal("2.50"), Decimal(10)),
             "claude-3-5-sonnet-v2": (Decimal(3), Decimal(15))}
CENT = Decimal("0.01")


def _published(model: str) -> tuple[Decimal, Decimal] | None:
    if model == UNPRICED:
        return None
    bare = model.split("/")[-1]
    return PUBLISHED["claude-3-5-sonnet-v2"] if "claude-3-5-sonnet" in bare else PUBLISHED[bare]


def _hand_rows() -> list[tuple[datetime, str, int, int]]:
    """(shifted UTC time, model, prompt tokens, completion tokens) straight from the two CSV files."""
    rows = []
    for service in ("conv", "code"):
        with (DATA / f"azure_llm_2023_{service}_slice.csv").open(encoding="utf-8") as f:
            for i, raw in enumerate(csv.DictReader(f)):
                at = datetime.strptime(raw["TIMESTAMP"][:26], "%Y-%m-%d %H:%M:%S.%f") + timedelta(days=SHIFT_DAYS)
                model = model_of(TraceRow(at, service, 0, 0, i))
                rows.append((at, model, int(raw["ContextTokens"]), int(raw["GeneratedTokens"])))
    return rows


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], realistic_log.Truth, str]:
    path = tmp_path_factory.mktemp("realistic") / "hour.jsonl"
    truth = realistic_log.write(path)
    home = str(tmp_path_factory.mktemp("home"))
    as_json = CliRunner().invoke(cli, ["audit", str(path), "--json"], env={"TOKENOMY_HOME": home})
    assert as_json.exit_code == 0, as_json.output
    terminal = CliRunner().invoke(cli, ["audit", str(path)], env={"TOKENOMY_HOME": home, "COLUMNS": "200"})
    assert terminal.exit_code == 0, terminal.output
    return json.loads(as_json.stdout), truth, terminal.stdout


def test_requests_tokens_and_spend_match_the_hand_computation(audited: tuple[dict[str, Any], Any, str]) -> None:
    doc, _, terminal = audited
    rows = _hand_rows()
    assert (len(rows), doc["requests"]) == (478, 478)
    assert doc["input_tokens"] == round(sum(r[2] for r in rows) / 478)
    priced = [(r, _published(r[1])) for r in rows]
    spend = sum((p * r[2] / 10**6 + c * r[3] / 10**6 for r, (p, c) in ((r, q) for r, q in priced if q)), Decimal(0))
    assert Decimal(str(doc["spend"]["total_usd"])).quantize(CENT) == spend.quantize(CENT) == Decimal("7.50")
    by_model: dict[str, Decimal] = {}
    for r, price in priced:
        if price is not None:
            by_model[r[1]] = by_model.get(r[1], Decimal(0)) + price[0] * r[2] / 10**6 + price[1] * r[3] / 10**6
    for model, usd in by_model.items():
        got = doc["spend"]["by_model"][model]
        assert Decimal(str(got["cost_usd"])).quantize(CENT) == usd.quantize(CENT), model
        assert got["input_tokens"] == sum(r[2] for r in rows if r[1] == model)
    # the unpriced share: requests and tokens of the fine-tune, on the first line and in the JSON
    unpriced = [r for r in rows if r[1] == UNPRICED]
    tokens = sum(r[2] + r[3] for r in unpriced)
    every = sum(r[2] + r[3] for r in rows)
    assert doc["unpriced"]["requests"] == len(unpriced) == 10 and doc["unpriced"]["tokens"] == tokens
    assert doc["unpriced"]["share_of_tokens"] == round(tokens / every, 4)
    assert terminal.splitlines()[0].endswith(
        f"UNPRICED: {len(unpriced) / 478:.1%} of requests, {doc['unpriced']['share_of_tokens']:.1%} of tokens "
        "(1 model with no price; not in the spend)")


def test_time_figures_come_from_the_real_span(audited: tuple[dict[str, Any], Any, str]) -> None:
    doc, _, terminal = audited
    times = sorted(r[0] for r in _hand_rows())
    span = Decimal(str((times[-1] - times[0]).total_seconds()))  # 113.94 s: 18:15:46.68 to 18:17:40.62
    assert doc["window"]["span_s"] == pytest.approx(float(span), abs=1e-3)
    spend = Decimal(str(doc["spend"]["total_usd"]))
    month = spend * 30 * 86_400 / span  # a 30-day month's seconds over the log's seconds
    assert Decimal(str(doc["spend"]["monthly_usd"])).quantize(CENT) == month.quantize(CENT)
    assert doc["rate"]["requests_per_minute_mean"] == pytest.approx(478 * 60 / float(span), abs=0.01)
    busiest = max(sum(1 for u in times if t - timedelta(seconds=60) < u <= t) for t in times)
    assert doc["rate"]["requests_per_minute_peak"] == busiest
    assert list(doc["spend"]["by_hour"]) == ["2025-11-18T18:00Z"] and "hourly_share" not in doc
    assert "caveat: extrapolated from 1.9 minutes of traffic" in terminal and "Spend by hour (UTC)" in terminal


def test_repeats_and_the_paraphrase_estimate_against_the_truth(audited: tuple[dict[str, Any], Any, str]) -> None:
    doc, truth, _ = audited
    assert doc["exact_repeats"]["requests"] == truth.repeats
    sem = doc["semantic_cache"]
    # the sample: priced requests that are not exact repeats (an unpriced one has no cost to save)
    priced = [kind for kind, line in zip(truth.kinds, truth.lines, strict=True)
              if line["request"]["model"] != UNPRICED and kind != "repeat"]
    assert sem["sampled"] == len(priced)
    true_share = priced.count("paraphrase") / len(priced)
    estimate = sem["estimated_share"]
    assert estimate["low"] <= true_share <= estimate["high"], (true_share, estimate)
    assert sem["share"] < true_share  # what the detector finds alone under-counts: hence the correction


def test_the_page_shows_the_same_numbers(audited: tuple[dict[str, Any], Any, str]) -> None:
    doc, _, terminal = audited
    page = render_html(doc)
    assert terminal.splitlines()[0] in page.replace("&#x27;", "'")
    assert f"{doc['unpriced']['share_of_requests']:.1%} of requests" in page
    models = Counter(model_of(TraceRow(datetime.now(), "code", 0, 0, i)) for i in range(4))
    assert all(model in doc["spend"]["by_model"] for model in models)
