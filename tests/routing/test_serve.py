"""Learned routing in the gateway: a router trained (real MiniLM) on the GSM8K fixture, served as tokenomy/auto in
front of two fault-upstream deployments named after the fixture's models; driven with the OpenAI SDK."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.routing.conftest import GSM8K, ROUTELLM_PRICES

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import (
    DeploymentConfig,
    LedgerConfig,
    LocalConfig,
    PriceOverride,
    RouterConfig,
    RoutingConfig,
    Settings,
    load_settings,
)
from tokenomy.errors import ConfigError, ModelNotFoundError
from tokenomy.routing.calibrate import parse_target
from tokenomy.routing.outcomes import read_outcomes, read_prices
from tokenomy.routing.router import Decision
from tokenomy.routing.serve import RouterSet, ServedRouter, pick_served
from tokenomy.wire.prompt import prompt_text

FRONTIER, CHEAP = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


@pytest.fixture(scope="module")
def gateway(router_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Path]]:
    home = tmp_path_factory.mktemp("route-home")
    price = PriceOverride(input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"))
    with run_fault_upstream() as (base, _):
        deployments = [DeploymentConfig(name=name, provider="openai_compatible", model=name, upstream_model="echo",
                                        base_url=base, price=price) for name in (FRONTIER, CHEAP)]
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                            routing=RoutingConfig(auto_router=str(router_dir),
                                                  routers={"cheap": RouterConfig(path=str(router_dir),
                                                                                 target="share=0")}))
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), home / "ledger.db"


def _prompts() -> list[str]:
    return [row.prompt for row in read_outcomes([GSM8K]).evaluation_rows()[:20]]


def _route(client: openai.OpenAI, prompt: str, model: str = "tokenomy/auto",
           target: str | None = None) -> Any:
    headers = {"x-tokenomy-route-target": target} if target else None
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}],
        extra_headers=headers)


def test_auto_routes_to_a_served_model(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    prompt = _prompts()[0]
    raw = _route(client, prompt)
    chosen = raw.headers["x-tokenomy-route"]
    assert chosen in (FRONTIER, CHEAP)
    assert raw.headers["x-tokenomy-deployment"] == chosen  # dispatched as if the client had asked for it
    assert raw.headers["x-tokenomy-route-reason"].startswith("auto: target share=0.5 (router default); " + chosen)
    assert raw.parse().choices[0].message.content == f"echo: {prompt}"


def test_target_header_moves_the_choice_to_the_cheaper_model(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    picks = {target: Counter(_route(client, p, target=target).headers["x-tokenomy-route"] for p in _prompts())
             for target in ("share=0", "share=0.5", "quality=1.3")}
    assert picks["share=0"][FRONTIER] <= 2, picks  # ≈ no frontier calls when the target allows none
    # an unreachable quality target is the best-quality point: the best expected model per prompt, mostly frontier
    assert picks["quality=1.3"][FRONTIER] >= 12, picks
    assert picks["share=0"][CHEAP] > picks["share=0.5"][CHEAP] > picks["quality=1.3"][CHEAP], picks


def test_named_router_uses_its_configured_target(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    raw = _route(client, _prompts()[1], model="tokenomy/cheap")
    assert "target share=0 (config)" in raw.headers["x-tokenomy-route-reason"]
    header = _route(client, _prompts()[1], model="tokenomy/cheap", target="quality=1.3")
    assert "target quality=1.3 (header)" in header.headers["x-tokenomy-route-reason"]


@pytest.mark.parametrize("value", ["share=2", "speed=1", "budget=lots", "quality=0.9|share=0.3", "share="])
def test_bad_target_header_is_a_400(gateway: tuple[openai.OpenAI, Path], value: str) -> None:
    client, _ = gateway
    with pytest.raises(openai.BadRequestError) as caught:
        _route(client, "hello", target=value)
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "invalid_route_target"
    assert error["param"] == "x-tokenomy-route-target" and "\n" not in error["message"]


def test_route_reason_is_in_the_ledger(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    raw = _route(client, _prompts()[2], target="budget=1.5")
    rid = raw.headers["x-request-id"]
    row = None
    deadline = time.monotonic() + 10
    while row is None and time.monotonic() < deadline:
        with sqlite3.connect(ledger) as db:
            row = db.execute("SELECT requested_model, route_reason FROM requests WHERE id = ?", (rid,)).fetchone()
        time.sleep(0.05)
    assert row is not None
    assert row[0] == "tokenomy/auto"
    assert row[1] == raw.headers["x-tokenomy-route-reason"] and "target budget=1.5 (header)" in row[1]


def test_routers_are_listed_as_models(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    listed = {m.id: m for m in client.models.list()}
    assert "tokenomy/auto" in listed and getattr(listed["tokenomy/auto"], "tier", None) == "router"
    assert CHEAP in listed
    assert client.models.retrieve("tokenomy/auto").id == "tokenomy/auto"


def test_plain_models_are_not_routed(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    raw = _route(client, "hi", model=CHEAP)
    assert "x-tokenomy-route" not in raw.headers and raw.headers["x-tokenomy-deployment"] == CHEAP


def test_unserved_choice_falls_back_to_the_best_served_model() -> None:
    decision = Decision(model="a", expected_scores={"a": 0.9, "b": 0.6, "c": 0.7},
                        expected_costs_usd={"a": 1.0, "b": 0.01, "c": 0.5}, reason="", lam=0.5)
    assert pick_served(decision, lambda m: m != "a") == ("b", "; router chose a, which has no deployment here")
    assert pick_served(decision, lambda m: True)[0] == "a"
    with pytest.raises(ModelNotFoundError):
        pick_served(decision, lambda m: False)


def test_router_with_no_served_model_fails_at_startup(router_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'routing\.routers\.x': none of the router's models"):
        RouterSet.load(RoutingConfig(routers={"x": RouterConfig(path=str(router_dir))}), lambda m: False)
    with pytest.raises(ConfigError, match=r"key 'routing\.auto_router'"):
        RouterSet.load(RoutingConfig(auto_router=str(router_dir / "missing")), lambda m: True)


def test_router_env_and_prompt_text() -> None:
    settings = load_settings(env={"TOKENOMY_ROUTER": "/srv/router"})
    assert settings.routing.auto_router == "/srv/router"
    body = {"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                         {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    assert prompt_text(body) == "a\nb"
    assert prompt_text({"messages": [{"role": "system", "content": "only"}]}) == "only"


def test_failed_choice_falls_back_along_the_configured_chain(router_dir: Path,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("route-fallback")
    with run_fault_upstream() as (base, upstream):
        deployments = [DeploymentConfig(name=FRONTIER, provider="openai_compatible", model=FRONTIER,
                                        upstream_model="error-503", base_url=base, max_retries=0),
                       DeploymentConfig(name=CHEAP, provider="openai_compatible", model=CHEAP, upstream_model="echo",
                                        base_url=base)]
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                            fallbacks={FRONTIER: [CHEAP]}, routing=RoutingConfig(auto_router=str(router_dir)))
        with run_gateway(settings) as url:
            client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
            raws = [_route(client, p, target="quality=1.3") for p in _prompts()[:6]]
    routed_to_frontier = [r for r in raws if r.headers["x-tokenomy-route"] == FRONTIER]
    assert routed_to_frontier and upstream.calls["error-503"] >= 1
    assert all(r.headers["x-tokenomy-deployment"] == CHEAP for r in raws)


def test_streamed_requests_carry_the_route_headers(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    prompt = _prompts()[3]
    with client.chat.completions.with_streaming_response.create(
            model="tokenomy/auto", stream=True, messages=[{"role": "user", "content": prompt}]) as raw:
        chosen = raw.headers["x-tokenomy-route"]
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert chosen in (FRONTIER, CHEAP) and raw.headers["x-tokenomy-deployment"] == chosen
    assert text == f"echo: {prompt}"


async def test_concurrent_decisions_share_embedding_calls_and_match_single_ones(router_dir: Path) -> None:
    import asyncio

    served = RouterSet.load(RoutingConfig(auto_router=str(router_dir)), lambda m: True)
    entry = served._routers["tokenomy/auto"]
    assert entry.batcher is not None  # on by default (routing.batching)
    prompts = _prompts()[:18]
    targets = ["share=0.3", "quality=0.95", None] * 6
    batched = await asyncio.gather(*(entry.decide(p, t) for p, t in zip(prompts, targets, strict=True)))
    alone = [entry.router.decide(p, t) for p, t in zip(prompts, targets, strict=True)]
    assert [d.model for d in batched] == [d.model for d in alone]
    for b, a in zip(batched, alone, strict=True):
        assert b.expected_scores == pytest.approx(a.expected_scores, abs=1e-5)
    assert entry.batcher.stats.batches < len(prompts)  # requests that arrived together shared a model call


async def test_repeated_prompts_are_decided_once(router_dir: Path) -> None:
    served = RouterSet.load(RoutingConfig(auto_router=str(router_dir), decision_cache=2), lambda m: True)
    entry = served._routers["tokenomy/auto"]
    calls: list[int] = []
    decide_many = entry.router.decide_many

    def counted(prompts: Any, targets: Any, groups: Any = None) -> Any:
        calls.append(len(prompts))
        return decide_many(prompts, targets, groups)

    entry.router.decide_many = counted  # type: ignore[method-assign]
    a, b, c = _prompts()[:3]
    first = await entry.decide(a, None)
    assert await entry.decide(a, None) is first and calls == [1]  # remembered: no embedding
    await entry.decide(a, parse_target("share=0.1"))  # another target is another decision
    await entry.decide(b, None)
    await entry.decide(c, None)  # the cache holds 2: the least recently used (a, share=0.1) goes
    assert len(calls) == 4
    await entry.decide(a, parse_target("share=0.1"))
    assert len(calls) == 5
    assert RouterSet.load(RoutingConfig(auto_router=str(router_dir), decision_cache=0),
                          lambda m: True)._routers["tokenomy/auto"].remembered is None
    with pytest.raises(ConfigError, match=r"key 'routing\.decision_cache': Expected `int` >= 0"):
        load_settings(env={}, flags={"routing.decision_cache": -1})


def test_the_hold_charges_the_quantile_of_recent_gains_and_solves_budgets() -> None:
    from tokenomy.routing.online import TrafficHold

    hold = TrafficHold(window=1000, two_models=False, min_samples=100)
    for g in range(99):
        hold.observe(float(g), [0.5, 0.5], [1.0, 0.0])
    assert hold.mu(0.3) is None and hold.lam(1.0) is None  # too few requests seen: the calibrated point stands
    for g in range(99, 1000):
        hold.observe(float(g), [0.5 + g / 2000, 0.4], [0.002 * (1 + g % 3), 0.0001])  # model 0 better and dearer
    gains = range(1000)
    for share in (0.0, 0.05, 0.3, 0.999, 1.0):
        mu = hold.mu(share)
        assert mu is not None and sum(g > mu for g in gains) == round(share * 1000)
    hold.observe(5000.0, [0.9, 0.4], [0.002, 0.0001])  # the window slides: the oldest gain (0) leaves
    assert len(hold) == 1000 and hold.mu(0.001) == 999.0
    import numpy as np

    from tokenomy.routing.sweep import choose

    rows = list(hold._rows)
    expected, costs = np.array([e for e, _ in rows]), np.array([c for _, c in rows])
    for usd_per_1k in (0.1, 1.0, 2.0, 10.0):
        lam = hold.lam(usd_per_1k)
        assert lam is not None
        spent = costs[np.arange(len(costs)), choose(expected, costs, lam)].mean() * 1000
        assert spent <= usd_per_1k + 1e-9  # within the budget on the recent requests
        assert lam == 0.0 or costs[np.arange(len(costs)), choose(expected, costs, lam * 0.95)].mean() * 1000 > \
            usd_per_1k - 1e-9  # and no cheaper than it needs to be


def test_share_and_budget_targets_are_held_on_the_traffic_served(router_dir: Path) -> None:
    from tokenomy.routing.online import TrafficHold

    served = RouterSet.load(RoutingConfig(auto_router=str(router_dir)), lambda m: True)._routers["tokenomy/auto"]
    assert served.hold is not None  # on by default (routing.hold_window)
    router = served.router
    rows = read_outcomes([GSM8K]).rows
    prompts = [r.prompt for r in rows]  # the gateway decides without the rows' groups
    random.Random(7).shuffle(prompts)
    target = parse_target("share=0.2")
    decisions = router.decide_many(prompts, [target] * len(prompts))
    held = ServedRouter("t", router, None, hold=TrafficHold(window=100, two_models=True, min_samples=50))
    chosen = [held.held(d, target) for d in decisions]
    late = chosen[100:]
    share = sum(d.model == FRONTIER for d in late) / len(late)
    assert abs(share - 0.2) < 0.08, share
    assert all(d.online == 0 for d in chosen[:49]) and all(d.online >= 50 for d in chosen[50:])
    assert late[0].online == 100 and late[0].lam == 0.0  # the charge of the latest 100 requests' gains
    frontier_cost = sum(d.expected_costs_usd[FRONTIER] for d in decisions) / len(decisions)
    budget = parse_target(f"budget={frontier_cost * 1000 * 0.4}")  # 40 % of an all-frontier bill
    held = ServedRouter("t", router, None, hold=TrafficHold(window=100, two_models=True, min_samples=50))
    spent = [held.held(d, budget) for d in decisions][100:]
    mean = sum(d.expected_costs_usd[d.model] for d in spent) / len(spent) * 1000
    assert 0.25 * budget.value < mean < 1.15 * budget.value, (mean, budget)
    quality = ServedRouter("t", router, None, hold=TrafficHold(window=100, two_models=True, min_samples=50))
    assert all(quality.held(d, parse_target("quality=0.9")).online == 0 for d in decisions)  # not held


def test_budget_hold_corrects_estimates_with_the_real_costs_settled() -> None:
    """Estimates a third of the real cost: held on estimates alone the budget is spent three times over; with the
    real costs settled the hold meets it in real dollars."""
    import numpy as np

    from tokenomy.routing.online import MIN_SETTLED, TrafficHold
    from tokenomy.routing.sweep import choose

    rng = random.Random(3)
    rows = [([0.5 + rng.random() * 0.4, 0.4], [0.003 * (1 + rng.random()), 0.0003]) for _ in range(400)]
    real = np.array([c for _, c in rows]) * 3.0
    expected = np.array([e for e, _ in rows])

    def real_spend(hold: TrafficHold, usd_per_1k: float) -> float:  # serving weighs estimates × the factors
        lam = hold.lam(usd_per_1k)
        assert lam is not None
        weighed = real / 3.0 * np.array(hold.cost_factors(2))[None, :]
        return float(real[np.arange(len(real)), choose(expected, weighed, lam)].mean() * 1000)

    blind, settled = (TrafficHold(window=400, two_models=True) for _ in range(2))
    for i, (e, c) in enumerate(rows):
        blind.observe(1.0, e, c)
        settled.observe(1.0, e, c)
        if i < MIN_SETTLED - 1:
            settled.settle(0, c[0], c[0] * 3.0)
    assert settled.cost_factors(2) == [1.0, 1.0]  # too few settled requests: the estimates stand
    for i in range(MIN_SETTLED - 1, 60):
        settled.settle(0, rows[i][1][0], rows[i][1][0] * 3.0)
        settled.settle(1, rows[i][1][1], rows[i][1][1] * 3.0)
    assert settled.cost_factors(2) == pytest.approx([3.0, 3.0])
    settled.settle(1, float("nan"), 1.0)  # ignored
    settled.settle(0, 0.0, 1.0)
    assert settled.cost_factors(2) == pytest.approx([3.0, 3.0])
    budget = 4.0  # USD per 1k requests: between the all-cheap (0.9) and all-frontier (~13.5) real bills
    assert real_spend(blind, budget) > 2.0 * budget  # estimates a third of the truth: far over
    assert budget * 0.8 < real_spend(settled, budget) <= budget * 1.01


def test_the_gateway_settles_routed_requests_real_costs(router_dir: Path,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The router estimates costs at list prices; the deployments really cost a tenth of them. Once the ledger's
    costs are settled, the hold spends a budget in real dollars: several times more frontier calls, within it."""
    home = tmp_path_factory.mktemp("route-settle")
    prices = read_prices(ROUTELLM_PRICES)
    prompts = [r.prompt for r in read_outcomes([GSM8K]).rows][:200]
    with run_fault_upstream() as (base, _):
        deployments = [DeploymentConfig(
            name=name, provider="openai_compatible", model=name, upstream_model="echo", base_url=base,
            price=PriceOverride(input_usd_per_mtok=Decimal(str(prices[name].input_usd_per_mtok / 10)),
                                output_usd_per_mtok=Decimal(str(prices[name].output_usd_per_mtok / 10))))
            for name in (FRONTIER, CHEAP)]
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                            routing=RoutingConfig(auto_router=str(router_dir), hold_window=100))
        with run_gateway(settings) as url:
            client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
            raws = [_route(client, p, target="budget=0.1") for p in prompts]
        time.sleep(1.5)  # the ledger writer's group commit
    with sqlite3.connect(home / "ledger.db") as db:
        cost = dict(db.execute("SELECT id, cost_pusd FROM requests").fetchall())
    picks = [r.headers["x-tokenomy-route"] for r in raws]
    late = raws[150:]
    real_per_1k = sum(cost[r.headers["x-request-id"]] for r in late) / 1e12 / len(late) * 1000
    early_share = picks[:100].count(FRONTIER) / 100  # calibrated on the training rows' estimated costs
    late_share = picks[150:].count(FRONTIER) / len(late)
    assert late_share > 2 * early_share + 0.1, (early_share, late_share)
    assert 0.06 < real_per_1k < 0.125, (real_per_1k, early_share, late_share)  # the budget, in real dollars
