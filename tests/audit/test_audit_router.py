"""``--router DIR``: a router trained (WordLlama static embeddings, ~1 s) on the GSM8K fixture replaces the routing
heuristic; its decisions and its estimated cost ratio give the routing saving."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.audit.logs import chat, line, write_jsonl

from tokenomy.audit.routing import RouterTargets
from tokenomy.audit.run import run_audit
from tokenomy.audit.strategies import Assumptions
from tokenomy.cli.main import cli
from tokenomy.pricing.catalogue import PACKAGED, Catalogue, read_document

DATA = Path(__file__).parents[1] / "routing" / "data"
GSM8K = DATA / "gsm8k_small.jsonl"


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("wordllama")
    out = tmp_path_factory.mktemp("audit") / "router"
    result = CliRunner().invoke(cli, ["route", "train", "--data", str(GSM8K), "--prices",
                                      str(DATA / "routellm.models.json"), "--out", str(out),
                                      "--embedder", "wordllama-l2-supercat", "--json",
                                      "--no-guard"])  # 160 rows: the guard would serve one model everywhere
    assert result.exit_code == 0, result.output
    return out


def test_router_decisions_price_the_routing_saving(router_dir: Path, tmp_path: Path) -> None:
    from tokenomy.routing.router import Router

    prompts = [json.loads(r)["prompt"] for r in GSM8K.read_text().splitlines()[:6]]
    prompts += ["What are your opening hours?", "Where is my order?"]
    path = write_jsonl(tmp_path / "log.jsonl", [
        line(chat(p, system=False), f"2026-03-02T10:{i:02d}:00Z", prompt=500, completion=100)
        for i, p in enumerate(prompts)])
    router = Router.load(router_dir)
    cost = Decimal(500 * 2.5 + 100 * 10) / 1_000_000  # gpt-4o
    # the catalogue prices mixtral-8x7b-instruct-v0.1 (genai-prices: mistral/mixtral-8x7b, $0.70 / $0.70 per 1M)
    mixtral = Decimal(500 * 0.7 + 100 * 0.7) / 1_000_000
    expected, routed = Decimal(0), 0
    for p in prompts:
        d = router.decide(p, target="quality=0.97")
        if d.model != router.frontier:
            assert d.model == "mixtral-8x7b-instruct-v0.1"
            routed += 1
            expected += cost - mixtral
    assert 0 < routed < len(prompts)
    targets = RouterTargets.load(router_dir, 0.97)
    audit = run_audit([path], Catalogue.load(), Assumptions(batchable_share=0.0), router=targets).audit
    assert audit.routable == routed and targets.decisions == len(prompts)
    assert sum(targets.mix.values()) == len(prompts) and targets.mix[router.frontier] == len(prompts) - routed
    assert audit.alone["routing"] == expected
    # a catalogue without mixtral (our own rows only): the router's estimated cost ratio prices the routed calls
    own = Catalogue.from_documents([(read_document(PACKAGED), "prices.json")])
    ratio = sum((cost * (1 - Decimal(str(d.expected_costs_usd[d.model] / d.expected_costs_usd[router.frontier])))
                 for d in (router.decide(p, target="quality=0.97") for p in prompts) if d.model != router.frontier),
                Decimal(0))
    by_ratio = run_audit([path], own, Assumptions(batchable_share=0.0), router=RouterTargets.load(router_dir, 0.97))
    assert float(by_ratio.audit.alone["routing"]) == pytest.approx(float(ratio), rel=1e-9)


def test_cli_router_option_reports_the_router(router_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--demo", "--json", "--router", str(router_dir),
                                      "--target-quality", "0.9"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["routing"]["method"] == "router router (target quality=0.9)"
    assert 0 < doc["routing"]["decisions"] < doc["requests"]  # memoised by prompt text
    mix = doc["routing"]["mix"]  # the complexity mix: requests per tier the router chose
    assert set(mix) <= {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"} and len(mix) == 2
    assert sum(mix.values()) >= doc["routing"]["routable_requests"]
    assert doc["savings"]["monthly_usd"]["routing"] > 0
    quality = doc["routing"]["quality"]  # the router's own out-of-fold row at the target: measured, not assumed
    assert quality["measured"] and 0 < quality["score"] <= 1 and 0 <= quality["frontier_share"] <= 1
    assert quality["score"] >= 0.9 * quality["frontier_score"]
