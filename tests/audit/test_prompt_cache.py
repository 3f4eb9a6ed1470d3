"""tokenomy cache simulate: provider prompt-cache billing with and without shaping."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from tokenomy.audit.cache_workload import demo
from tokenomy.audit.prompt_cache import Simulator
from tokenomy.cli.cache_cmd import cache_group
from tokenomy.pricing.catalogue import Catalogue
from tokenomy.tokens.counter import TokenCounter

T0 = 1_764_000_000.0  # 2025-11-24: the catalogue's prices are in force


class WordCounter:
    """One token per word: makes the arithmetic below checkable by hand."""

    def count_text(self, text: str, model: str) -> int:
        return len(text.split())


def test_anthropic_shaping_reads_the_cached_prefix_exactly() -> None:
    system = "word " * 1100  # 1,100 tokens: over Sonnet's 1,024 minimum
    body = {"model": "x", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "q one"}]}
    again = {"model": "x", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "q two"}]}
    report = Simulator("anthropic", "claude-sonnet-4-5", WordCounter(), Catalogue.load()).run(
        [(T0, body), (T0 + 60, again)])
    shaped, unshaped = report["shaped"], report["unshaped"]
    assert unshaped["cache_read_tokens"] == 0 and unshaped["cache_write_5m_tokens"] == 0
    # first request writes the 1,100-token system prefix; the second reads it
    assert (shaped["cache_write_5m_tokens"], shaped["cache_read_tokens"]) == (1100, 1100)
    assert shaped["uncached_input_tokens"] == 4 and shaped["cacheable_read_share"] == 0.5
    # Sonnet 4.5: writes 1100 × 3.75, reads 1100 × 0.30, input 4 × 3 (per million) = 4125 + 330 + 12 = 4467 µ$
    assert Decimal(shaped["cost_usd"]) == Decimal("0.004467")
    # unshaped: 2204 × 3 = 6612 µ$
    assert Decimal(unshaped["cost_usd"]) == Decimal("0.006612")


def test_an_expired_entry_is_written_again_with_the_longer_ttl() -> None:
    system = "word " * 1100
    requests = [(T0 + t, {"model": "x", "messages": [{"role": "system", "content": system},
                                                     {"role": "user", "content": f"q{t}"}]}) for t in (0, 600)]
    shaped = Simulator("anthropic", "claude-sonnet-4-5", WordCounter(), Catalogue.load()).run(requests)["shaped"]
    # 10 minutes apart: the 5-minute entry is gone, so the prefix is written again, now with the 1-hour TTL
    assert shaped["cache_read_tokens"] == 0
    assert (shaped["cache_write_5m_tokens"], shaped["cache_write_1h_tokens"]) == (1100, 1100)


def test_demo_workload_meets_the_ninety_percent_target() -> None:
    report = Simulator("anthropic", "claude-sonnet-4-5", TokenCounter(), Catalogue.load()).run(demo())
    assert report["shaped"]["cacheable_read_share"] >= 0.9
    assert Decimal(report["shaped"]["cost_usd"]) < Decimal(report["unshaped"]["cost_usd"]) / 3


def test_cli_reads_a_log(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps({"timestamp": at, "request": body}) for at, body in demo(3, 3)))
    result = CliRunner().invoke(cache_group, ["simulate", str(log), "--provider", "openai", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["shaped"]["requests"] == 9 and report["provider"] == "openai"
    bad = CliRunner().invoke(cache_group, ["simulate"])
    assert bad.exit_code != 0
