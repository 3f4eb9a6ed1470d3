"""Known answers on hand-built logs: repeats within the TTL, shared prefixes, spend, and combined savings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tests.audit.logs import SYSTEM, chat, line, write_jsonl, write_ledger

from tokenomy.audit.report import audit_document
from tokenomy.audit.run import run_audit
from tokenomy.audit.strategies import Assumptions, routable
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.tokens.counter import TokenCounter

AT = datetime(2026, 3, 2, tzinfo=UTC)
NO_BATCH = Assumptions(batchable_share=0.0, small_model="gpt-4o-mini")


def _ts(hours: float) -> str:
    return datetime.fromtimestamp(AT.timestamp() + 10 * 3600 + hours * 3600, UTC).isoformat()


def test_repeats_and_shared_prefixes_on_a_hand_built_log(tmp_path: Path) -> None:
    system_tokens = TokenCounter().count_text(SYSTEM, "gpt-4o") + 4  # 3 per message + 1 for the role
    prompt = system_tokens + 20
    order = chat("Where is my order?")
    path = write_jsonl(tmp_path / "log.jsonl", [
        line(order, _ts(0), prompt=prompt),
        line(order, _ts(1), prompt=prompt),  # exact repeat after 1 h; prefix seen 1 h ago: a hit
        line(chat("What is the integral of x^2?"), _ts(1.5), prompt=prompt),  # new key; prefix hit
        line(order, _ts(27), prompt=prompt),  # 26 h after the last sight: not a repeat; prefix too old
        line(chat("Where is my order?", system=False), _ts(27.2), prompt=30),  # other key, no prefix
        line(chat("Where is my order?", temperature=0.5), _ts(27.3), prompt=prompt),  # other key; prefix hit
    ])
    audit = run_audit([path], Catalogue.load(), NO_BATCH).audit
    assert audit.with_body == 6
    assert audit.repeats == 1
    assert (audit.prefix_hits, audit.prefix_hit_tokens) == (3, 3 * system_tokens)
    assert audit.routable == 5  # all but the integral


def test_exact_ttl_is_configurable(tmp_path: Path) -> None:
    order = chat("Where is my order?")
    path = write_jsonl(tmp_path / "log.jsonl", [line(order, _ts(0)), line(order, _ts(2)), line(order, _ts(5))])
    audit = run_audit([path], Catalogue.load(), Assumptions(exact_ttl_s=3 * 3600)).audit
    assert audit.repeats == 2
    audit = run_audit([path], Catalogue.load(), Assumptions(exact_ttl_s=3600)).audit
    assert audit.repeats == 0


def test_spend_equals_an_independent_computation(tmp_path: Path) -> None:
    rows = [("gpt-4o", 0, 1200, 200, 300), ("gpt-4.1", 5, 800, 0, 50), ("gpt-4o", 30, 4000, 1000, 900)]
    path = write_jsonl(tmp_path / "log.jsonl", [
        line(chat(f"q{i}", model=m, system=False), _ts(h), prompt=p, cached=c, completion=o)
        for i, (m, h, p, c, o) in enumerate(rows)])
    catalogue = Catalogue.load()
    expected: dict[str, Decimal] = {}
    for model, _, prompt, cached, out in rows:
        price = catalogue.find(model, AT)
        assert price is not None
        usd = ((prompt - cached) * price.input + cached * price.cached_input + out * price.output) / 1_000_000
        expected[model] = expected.get(model, Decimal(0)) + usd
    run = run_audit([path], catalogue, NO_BATCH)
    assert {m: t.cost_usd for m, t in run.audit.by_model.items()} == expected
    doc = audit_document(run)
    assert doc["spend"]["total_usd"] == pytest.approx(float(sum(expected.values())))
    assert doc["spend"]["by_day"]["2026-03-02"]["requests"] == 2
    assert doc["spend"]["by_day"]["2026-03-03"]["requests"] == 1
    assert doc["hourly_share"][10] == 1 and doc["hourly_share"][15] == 1 and doc["hourly_share"][16] == 1
    assert doc["input_tokens"] == round((1200 + 800 + 4000) / 3)
    assert doc["usage"] == {"reported": 3}


def test_combined_savings_apply_in_sequence_without_double_counting(tmp_path: Path) -> None:
    body = chat("Where is my order?", system=False, metadata={"batch": "true"})
    path = write_jsonl(tmp_path / "log.jsonl", [line(body, _ts(0), prompt=1000, completion=100),
                                                line(body, _ts(0.02), prompt=1000, completion=100)])
    audit = run_audit([path], Catalogue.load(), NO_BATCH).audit
    cost = Decimal("0.0035")  # gpt-4o: 1000 x 2.50 + 100 x 10.00 per 1M
    mini_batch = Decimal("0.000105")  # gpt-4o-mini batch: 1000 x 0.075 + 100 x 0.30 per 1M
    assert audit.total.cost_usd == 2 * cost
    assert audit.alone["exact_cache"] == cost
    assert audit.alone["routing"] == 2 * (cost - Decimal("0.00021"))
    assert audit.alone["batch"] == 2 * (cost - Decimal("0.00175"))
    assert audit.alone["prompt_caching"] == 0
    assert audit.combined == (cost - mini_batch) + cost
    doc = audit_document(run_audit([path], Catalogue.load(), NO_BATCH))
    # the log spans 72 s (0.02 h): a 30-day month is 30 x 86,400 / 72 = 36,000 such windows
    assert doc["window"]["span_s"] == 72 and doc["window"]["month_scale"] == 36_000
    assert doc["savings"]["monthly_usd"]["combined"] == pytest.approx(float(audit.combined) * 36_000)


def test_ledger_costs_are_taken_as_recorded(tmp_path: Path) -> None:
    path = write_ledger(tmp_path / "ledger.db", [("gpt-4o", 1772445600_000000, 100, 0, 10, 1_000_000_000),
                                                 ("gpt-4o", 1772449200_000000, 100, 0, 10, None)])
    audit = run_audit([path], Catalogue.load(), NO_BATCH).audit
    assert audit.total.cost_usd == Decimal("0.001") + Decimal("0.00035")
    assert audit.with_body == 0 and audit.repeats == 0


def test_missing_usage_is_counted_offline(tmp_path: Path) -> None:
    body = chat("Where is my order?", system=False)
    path = write_jsonl(tmp_path / "log.jsonl", [
        {"timestamp": _ts(0), "request": body},
        {"timestamp": _ts(1), "request": body, "response": {"choices": [{"message": {"content": "On its way."}}]}}])
    audit = run_audit([path], Catalogue.load(), NO_BATCH).audit
    counter = TokenCounter()
    prompt = counter.count_messages(body["messages"], "gpt-4o")
    assert audit.usage_source == {"counted, output unknown": 1, "counted": 1}
    assert audit.total.input_tokens == 2 * prompt
    assert audit.total.output_tokens == counter.count_text("On its way.", "gpt-4o")


@pytest.mark.parametrize(("text", "expected"), [
    ("What are your opening hours?", True), ("Write a python function to sort a list.", False),
    ("If 3 apples cost $2, how much do 7 cost?", False), ("x" * 700, False)])
def test_routing_heuristic(text: str, expected: bool) -> None:
    assert routable({"messages": [{"role": "user", "content": text}]}) is expected


def test_self_host_break_even_follows_from_prices_and_throughput() -> None:
    from decimal import Decimal

    from tokenomy.audit.selfhost import DAYS_PER_MONTH, HOURS_PER_MONTH, small_tier_break_even
    from tokenomy.plan.data import load_gpus
    from tokenomy.pricing.catalogue import Catalogue

    catalogue = Catalogue.load()
    doc = {"input_tokens": 1000, "output_tokens": 200, "queries_per_day": 100_000,
           "routing": {"small_model": "gpt-4o-mini", "share": 0.5}}
    result = small_tier_break_even(doc, catalogue)
    assert result is not None
    price = catalogue.find("gpt-4o-mini", __import__("datetime").datetime.now(__import__("datetime").UTC))
    assert price is not None
    per_request = (price.input * 1000 + price.output * 200) / Decimal(1_000_000)
    best = result["best"]
    gpu = load_gpus().gpus[best["gpu"]]
    expected = float(gpu.on_demand.usd_per_hour * HOURS_PER_MONTH / per_request) / DAYS_PER_MONTH
    assert best["break_even_requests_per_day"] == round(expected)
    assert best["monthly_usd"] == min(o["monthly_usd"] for o in result["options"])
    assert result["routable_requests_per_day"] == 50_000
    assert result["worth_it"] == (best["break_even_requests_per_day"] <= 50_000 <= best["capacity_requests_per_day"])
    bigger = small_tier_break_even({**doc, "output_tokens": 2000}, catalogue)
    assert bigger is not None and bigger["best"]["break_even_requests_per_day"] < best["break_even_requests_per_day"]
    assert small_tier_break_even({**doc, "routing": {"small_model": "no-such-model"}}, catalogue) is None
