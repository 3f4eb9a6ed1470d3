"""No harm by construction (tokenomy.routing.guard): on synthetic outcome sets, the learned rule is kept only where
it beats the hull of single models out of fold; elsewhere the hull's single model is served, in `route eval`, in
`Router.decide` and through the gateway."""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.routing.conftest import hashed_embed

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import DeploymentConfig, LedgerConfig, LocalConfig, PriceOverride, RoutingConfig, Settings
from tokenomy.routing import store
from tokenomy.routing.calibrate import OperatingPoint, parse_target
from tokenomy.routing.evaluate import evaluate
from tokenomy.routing.guard import NOT_PAYING, NOT_PAYING_CURRENT, hull_at, hull_vertices
from tokenomy.routing.router import Router
from tokenomy.routing.train import train

SMALL, MID, BIG = "small-model", "mid-model", "big-model"
COST = {SMALL: 0.001, MID: 0.005, BIG: 0.010}
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "theta", "kappa", "lambda", "zeta", "eta", "iota",
         "rho", "tau", "phi", "chi", "psi", "nu", "xi", "mu"]


def _noisy(n_train: int, n_test: int, seed: int = 7) -> list[dict[str, Any]]:
    """One model dominates everywhere and nothing in the prompt says anything: BIG scores 0.8, SMALL 0.3 and MID
    0.35 (well below the line from SMALL to BIG: a router that picks it loses), each a coin flip per prompt. A
    learner sees only noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_test):
        prompt = " ".join(rng.choice(WORDS) for _ in range(8)) + f" question {i}?"
        outcomes = {m: {"score": float(rng.random() < p), "cost_usd": COST[m]}
                    for m, p in ((SMALL, 0.3), (MID, 0.35), (BIG, 0.8))}
        rows.append({"id": f"noise/{i}", "prompt": prompt, "outcomes": outcomes,
                     "split": "train" if i < n_train else "test"})
    return rows


def _informative(n_train: int, n_test: int, seed: int = 11) -> list[dict[str, Any]]:
    """The prompt says which model is right: SMALL answers poems as well as BIG, and fails sums; MID never helps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_test):
        poem = rng.random() < 0.5
        prompt = (f"write a short poem about the {rng.choice(WORDS)} river" if poem
                  else f"compute the sum of {rng.randint(10, 99)} and {rng.randint(10, 99)} exactly")
        chance = {SMALL: 0.85 if poem else 0.1, MID: 0.3, BIG: 0.9}
        outcomes = {m: {"score": float(rng.random() < chance[m]), "cost_usd": COST[m]} for m in COST}
        rows.append({"id": f"info/{i}", "prompt": prompt, "outcomes": outcomes,
                     "split": "train" if i < n_train else "test"})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class _Hashed:
    dimensions = 64

    def embed(self, texts: list[str]) -> Any:
        class Result:
            vectors = hashed_embed(texts)

        return Result()


def _router(directory: Path, counter: Any) -> Router:
    return Router(store.load(directory), _Hashed(), counter)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("noisy") / "noisy.jsonl", _noisy(600, 600))


def test_hull_of_single_models() -> None:
    costs, scores = [1.0, 5.0, 10.0, 12.0], [0.3, 0.35, 0.8, 0.7]
    assert hull_vertices(costs, scores) == [0, 2]  # MID lies below the line, the dearest one below BIG
    assert hull_at(costs, scores, 5.0) == pytest.approx(0.3 + 0.5 * 4 / 9)
    assert hull_at(costs, scores, 0.5) == 0.3 and hull_at(costs, scores, 20.0) == 0.8  # flat past either end
    assert hull_vertices([1.0, 2.0, 3.0], [0.5, 0.7, 0.8]) == [0, 1, 2]


def test_a_dearer_model_is_served_only_where_it_beats_the_cheaper_beyond_noise() -> None:
    import numpy as np

    from tokenomy.routing.guard import sure_vertices

    folds = np.arange(100) % 5
    members = [np.nonzero(folds == f)[0] for f in range(5)]
    cheap = (np.arange(100) % 2).astype(float)  # 0.5 in every fold
    lucky = cheap.copy()
    lucky[[0, 2]] = 1.0  # two more right answers, in folds 0 and 2: +2 points, fold-to-fold noise ±2.7
    best = cheap.copy()
    best[np.arange(0, 100, 4)] = 1.0  # +25 points, the same in every fold
    costs = np.tile([1.0, 2.0, 20.0], (100, 1))
    scores = np.column_stack([cheap, lucky, best])
    assert hull_vertices(list(costs.mean(axis=0)), list(scores.mean(axis=0))) == [0, 1, 2]  # on the means
    assert sure_vertices(costs, scores, members) == [0, 2]  # the lucky one is within the noise: not served
    top = best.copy()
    top[[2, 6]] = 1.0  # the best model, at 20: served whatever the noise (a target may ask for it)
    assert sure_vertices(costs, np.column_stack([cheap, best, top]), members) == [0, 1, 2]  # +25 at 2: beyond noise


def test_the_current_model_stays_unless_another_beats_it_beyond_noise() -> None:
    import numpy as np

    from tokenomy.routing.guard import sure_vertices

    folds = np.arange(100) % 5
    members = [np.nonzero(folds == f)[0] for f in range(5)]
    cheap = (np.arange(100) % 2).astype(float)  # 0.5, at cost 1
    current = cheap.copy()
    current[[0, 10, 6, 16, 2, 12, 8, 18, 4, 14]] = 1.0  # +10 points at cost 20: two more right in every fold
    lucky = current.copy()
    lucky[[20, 22]] = 1.0  # the same price, two more right answers: +2 points, within the fold-to-fold noise
    costs = np.tile([1.0, 20.0, 20.0], (100, 1))
    scores = np.column_stack([cheap, current, lucky])
    assert sure_vertices(costs, scores, members) == [0, 2]  # no current model: the best on the rows is served
    assert sure_vertices(costs, scores, members, current=1) == [0, 1]  # the team's model stays
    better = current.copy()
    better[np.arange(30, 100, 4)] = 1.0  # +18 points more, 3 or 4 more right in every fold: beyond the noise
    assert sure_vertices(costs, np.column_stack([cheap, current, better]), members, current=1) == [0, 2]
    # a dearer model than the team's joins only beyond the noise too
    dear = np.tile([1.0, 20.0, 40.0], (100, 1))
    assert sure_vertices(dear, scores, members, current=1) == [0, 1]
    # a team on the cheapest model: the dearer ones beat it by +10 points beyond the noise and are served where a
    # target pays for them; of the two of one price, within noise of each other, the better on the rows
    assert sure_vertices(costs, scores, members, current=0) == [0, 2]


def test_route_train_current_serves_the_teams_model(noisy: Path, tmp_path: Path, counter: Any) -> None:
    from click.testing import CliRunner

    from tokenomy.cli.main import cli

    data = tmp_path / "same_price.jsonl"
    rng = random.Random(3)
    lines = []
    for i in range(200):
        prompt = " ".join(rng.choice(WORDS) for _ in range(8)) + f" question {i}?"
        right = rng.random() < 0.7  # two models of one price, one a hair better on these rows by chance
        outcomes = {SMALL: {"score": float(rng.random() < 0.3), "cost_usd": 0.001},
                    MID: {"score": float(right), "cost_usd": 0.010},
                    BIG: {"score": float(right or rng.random() < 0.05), "cost_usd": 0.010}}
        lines.append(json.dumps({"id": f"same/{i}", "prompt": prompt, "outcomes": outcomes,
                                 "split": "train" if i < 150 else "test"}))
    data.write_text("\n".join(lines) + "\n")
    plain = train([data], tmp_path / "plain", embed=hashed_embed, counter=counter)
    assert plain["no_harm"]["hull_served"] == [SMALL, BIG]
    kept = train([data], tmp_path / "kept", embed=hashed_embed, counter=counter, current=MID)
    assert kept["no_harm"]["hull_served"] == [SMALL, MID] and kept["no_harm"]["current"] == MID
    router = _router(tmp_path / "kept", counter)
    assert router.at_point(router.decide("alpha beta question?"), OperatingPoint(0.0), None).model == MID
    on_big = train([noisy], tmp_path / "on_big", embed=hashed_embed, counter=counter, current=BIG)
    assert on_big["no_harm"]["verdict"].startswith(f"{NOT_PAYING_CURRENT} ({BIG};")  # where learning does not pay

    runner = CliRunner()
    base = ["route", "train", "--data", str(data), "--embedder", "wordllama-l2-supercat", "--no-embedding-cache"]
    result = runner.invoke(cli, [*base, "--out", str(tmp_path / "cli"), "--current", MID])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"your current model {MID}: served where learning does not pay"
    unknown = runner.invoke(cli, [*base, "--out", str(tmp_path / "x"), "--current", "gpt-4o-2024-08-06"])
    assert unknown.exit_code != 0 and "'gpt-4o-2024-08-06' is not a model of the training rows" in unknown.output
    both = runner.invoke(cli, [*base, "--out", str(tmp_path / "y"), "--current", MID, "--no-guard"])
    assert both.exit_code == 2 and "drop --no-guard" in both.output


def test_a_noisy_learner_does_no_harm_where_one_model_dominates(noisy: Path, counter: Any, tmp_path: Path) -> None:
    guarded = train([noisy], tmp_path / "guarded", embed=hashed_embed, counter=counter)
    assert guarded["no_harm"]["verdict"].startswith(NOT_PAYING)
    assert guarded["no_harm"]["points_kept"] == 0
    result = evaluate(_router(tmp_path / "guarded", counter), [noisy])
    assert result["summary"]["router"]["harm"] <= 0.01
    assert all(result["no_harm"]["hull_points"])
    # the default target quality=0.95 is met by the dominant model alone: out of fold and on test
    assert guarded["default_target_oof"]["kind"] == "single" and guarded["default_target_oof"]["model"] == BIG
    assert result["calibration"][0]["test"]["share"] == 1.0

    # the same learner without the guard falls below the hull: the test above can fail
    free = train([noisy], tmp_path / "free", embed=hashed_embed, counter=counter, no_harm=False)
    assert free["no_harm"] == {"guard": False}
    unguarded = evaluate(_router(tmp_path / "free", counter), [noisy])
    assert unguarded["summary"]["router"]["harm"] > 0.01, unguarded["summary"]["router"]["vs_hull"]


def test_where_routing_pays_the_learned_rule_is_kept(counter: Any, tmp_path: Path) -> None:
    data = _write(tmp_path / "informative.jsonl", _informative(600, 600))
    report = train([data], tmp_path / "r", embed=hashed_embed, counter=counter)
    kept = [b for b in report["no_harm"]["bands"] if b["beats_hull"]]
    assert kept and report["no_harm"]["verdict"].startswith("routing beats the hull")
    assert max(b["uplift"] for b in kept) > 0.1  # poems to SMALL, sums to BIG: ~+0.3 at half of BIG's cost
    decisions = tmp_path / "decisions.jsonl"
    result = evaluate(_router(tmp_path / "r", counter), [data], decisions=decisions)
    router = result["summary"]["router"]
    assert router["harm"] <= 0.01 and router["uplift_max"] > 0.1
    hull = result["no_harm"]["hull_points"]
    assert not all(hull) and any(hull)  # the cheapest point serves SMALL alone: no learned point beats it there
    # every point, learned or the hull's, is what --decisions says was chosen
    rows = {r["id"]: r for r in map(json.loads, data.read_text().splitlines())}
    by_point: dict[int, list[float]] = {}
    for line in map(json.loads, decisions.read_text().splitlines()):
        by_point.setdefault(line["point"], []).append(rows[line["id"]]["outcomes"][line["model"]]["score"])
    assert [sum(v) / len(v) for _, v in sorted(by_point.items())] == pytest.approx(
        [p["score"] for p in result["points"]["router"]])


def test_decisions_name_the_hull_when_it_serves(noisy: Path, counter: Any, tmp_path: Path) -> None:
    train([noisy], tmp_path / "r", embed=hashed_embed, counter=counter)
    router = _router(tmp_path / "r", counter)
    lam_rows = [r for r in router.state.calibration if r.get("kind", "lambda") == "lambda"]
    middle = lam_rows[len(lam_rows) // 2]  # any λ: none beats the hull here
    at = OperatingPoint(float(middle["lambda"]) * 1.0001)
    decision = router.at_point(router.decide("alpha beta question?", target="budget=10"), at, None)
    assert decision.model == router.guard.row(at)["fallback"] and decision.model in (SMALL, BIG)
    assert decision.hull.startswith(f"the hull's choice {decision.model} (routing does not beat the hull")
    assert decision.hull.isascii()
    single = router.decide("alpha beta question?", target="quality=0.95")
    assert single.model == BIG and "a single model meets the target" in single.hull


@pytest.fixture(scope="module")
def gateway(noisy: Path, counter: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    """The noisy router (real WordLlama embeddings, as served) behind three fault-upstream deployments."""
    from tokenomy.embeddings.choice import load_embedder
    from tokenomy.routing.features import FeatureConfig

    home = tmp_path_factory.mktemp("no-harm-home")
    embedder = load_embedder("wordllama-l2-supercat")
    train([noisy], home / "router", embed=lambda texts: embedder.embed(texts).vectors, counter=counter,
          base=FeatureConfig(embedder="wordllama-l2-supercat"), target="budget=5")
    price = PriceOverride(input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"))
    with run_fault_upstream() as (base, _):
        deployments = [DeploymentConfig(name=m, provider="openai_compatible", model=m, upstream_model="echo",
                                        base_url=base, price=price) for m in COST]
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                            routing=RoutingConfig(auto_router=str(home / "router"), hold_window=0))
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0)


def test_the_gateway_serves_the_hull_where_routing_does_not_beat_it(gateway: openai.OpenAI) -> None:
    picks: Counter[str] = Counter()
    for i, target in enumerate(["budget=5", "share=0.5", "quality=0.95", "budget=5"] * 3):
        raw = gateway.chat.completions.with_raw_response.create(
            model="tokenomy/auto", messages=[{"role": "user", "content": f"gamma delta question {i}?"}],
            extra_headers={"x-tokenomy-route-target": target})
        chosen, reason = raw.headers["x-tokenomy-route"], raw.headers["x-tokenomy-route-reason"]
        assert f"the hull's choice {chosen}" in reason, reason
        assert reason.isascii()
        picks[target, chosen] += 1
    # a budget of half BIG's cost and a share of 0.5 are met by SMALL alone; quality=0.95 needs BIG: never MID
    assert picks == {("budget=5", SMALL): 6, ("share=0.5", SMALL): 3, ("quality=0.95", BIG): 3}


def test_route_train_says_when_learning_does_not_pay(noisy: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tokenomy.cli.main import cli

    result = CliRunner().invoke(cli, ["route", "train", "--data", str(noisy), "--out", str(tmp_path / "r"),
                                      "--embedder", "wordllama-l2-supercat", "--no-embedding-cache"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "per cost band" in lines[1] and all(line.endswith("-> hull") for line in lines[2:-1])
    assert lines[-1].startswith(f"{NOT_PAYING} ({BIG};")


CHEAP_2, BIG_2 = "cheap-model", "big-model"


def _checkable(n_train: int, n_test: int, telling: bool, seed: int = 5) -> list[dict[str, Any]]:
    """Two models; the prompt says nothing. The cheap model is right half the time and its answer shows it when
    ``telling`` (a right answer states `#### N` after a correct calculation, a wrong one a wrong calculation and a
    fraction), else its answer is the same text either way. The big model is right 90 % of the time."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_test):
        prompt = " ".join(rng.choice(WORDS) for _ in range(8)) + f" question {i}?"
        right = rng.random() < 0.5
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        if telling and not right:
            answer = f"First {a} x {b} = {a * b + 3}. So about {a * b + 3}.5 in all"
        else:
            answer = f"First {a} x {b} = {a * b}. So #### {a * b}"
        outcomes = {CHEAP_2: {"score": float(right), "cost_usd": 0.001, "response": answer},
                    BIG_2: {"score": float(rng.random() < 0.9), "cost_usd": 0.010, "response": "#### 1"}}
        rows.append({"id": f"check/{i}", "prompt": prompt, "outcomes": outcomes,
                     "split": "train" if i < n_train else "test"})
    return rows


def test_calculation_flags() -> None:
    from tokenomy.routing.cascade import answer_flags, calculations

    assert calculations("3 x 60 = <<3*60=180>>180 meters, then 180 + 20 = 200") == (3, 0)
    assert calculations("22 + 4 x 12 = 70") == (1, 0)  # × before +
    assert calculations("then (25 - (8 * 1)) = 17") == (0, 0)  # a bracketed one in prose is not read: no guess
    assert calculations("4 * 125 - 2 = 500, <<17*(1/4)=68>>") == (2, 2)
    assert calculations("she paid $1,200 / 4 = $300") == (1, 0)
    assert answer_flags("so #### 5.5")[3] == 1.0 and answer_flags("so #### 1,200")[3] == 0.0
    # a model's answer is read on the request path: only its lines and sentences that are short enough are parsed
    # (the patterns backtrack quadratically over a long run of numbers)
    long_line = "1 + " * 99 + "1 = 100"  # right, but 400 characters on one line: not read
    assert calculations("First, 2 + 2 = 4. Then 4 * 3 = 12.\n" + long_line + "\n5 - 1 = 4") == (3, 0)
    assert calculations("<<" + "(" * 110 + "1" + ")" * 110 + "=1>>") == (1, 0)  # 110 deep: read, no RecursionError


def test_the_cascade_is_chosen_where_it_wins_and_does_no_harm(counter: Any, tmp_path: Path) -> None:
    telling = _write(tmp_path / "telling.jsonl", _checkable(500, 500, telling=True))
    report = train([telling], tmp_path / "r", embed=hashed_embed, counter=counter)
    assert report["policy"] == "cascade", report["cascade"]["verdicts"]
    wins = [v for v in report["cascade"]["verdicts"] if v["wins"]]
    assert wins and all(v["uplift"] > v["spread"] and v["uplift"] > v["router_uplift"] for v in wins)
    router = _router(tmp_path / "r", counter)
    assert router.cascade_serves(parse_target("share=0.5")) and not router.cascade_serves(parse_target("share=0"))
    result = evaluate(router, [telling], bootstrap=20)
    auto, plain = result["summary"]["auto"], result["summary"]["router"]
    assert auto["harm"] <= 0.01 and auto["apgr"] > plain["apgr"] + 0.2  # escalating the wrong answers pays
    assert auto["bootstrap"]["apgr"]["p05"] <= auto["apgr"] <= auto["bootstrap"]["apgr"]["p95"]

    # a mix where a fifth of the training rows carry no cheap answer (another task): not chosen for that traffic
    rows = _checkable(500, 500, telling=True)
    for row in rows[:100]:
        del row["outcomes"][CHEAP_2]["response"]
    mixed = _write(tmp_path / "mixed.jsonl", rows)
    report = train([mixed], tmp_path / "m", embed=hashed_embed, counter=counter)
    assert report["cascade"]["trained"] is True and report["policy"] == "route" and not report["cascade"]["verdicts"]

    # the same rows with answers that tell nothing: the cascade only adds the cheap call, and it is not chosen
    silent = _write(tmp_path / "silent.jsonl", _checkable(500, 500, telling=False))
    report = train([silent], tmp_path / "s", embed=hashed_embed, counter=counter)
    assert report["policy"] == "route" and not any(v["wins"] for v in report["cascade"]["verdicts"])
    result = evaluate(_router(tmp_path / "s", counter), [silent])
    assert "auto" not in result["summary"] and result["summary"]["cascade"]["harm"] > 0.01  # it would have harmed


def test_harm_against_the_training_hull_is_no_larger(noisy: Path, counter: Any, tmp_path: Path) -> None:
    train([noisy], tmp_path / "r", embed=hashed_embed, counter=counter)
    result = evaluate(_router(tmp_path / "r", counter), [noisy])
    assert result["no_harm"]["training_hull"] == [SMALL, BIG]  # MID is below the line on the training rows
    router = result["summary"]["router"]
    assert router["harm_vs_training_hull"] <= router["harm"] + 1e-12


def test_policy_auto_serves_the_cascade_only_where_it_won(counter: Any, tmp_path: Path) -> None:
    """Through the gateway: ``policy: auto`` asks the cheap model first for a share target where the cascade won
    out of fold, and routes (no cascade) for a quality target or a share where it did not."""
    from tokenomy.embeddings.choice import load_embedder
    from tokenomy.routing.features import FeatureConfig

    telling = _write(tmp_path / "telling.jsonl", _checkable(400, 10, telling=True))
    embedder = load_embedder("wordllama-l2-supercat")  # as served
    report = train([telling], tmp_path / "r", embed=lambda texts: embedder.embed(texts).vectors, counter=counter,
                   base=FeatureConfig(embedder="wordllama-l2-supercat"))
    assert report["policy"] == "cascade"
    with auto_and_plain(tmp_path / "r", tmp_path) as client:
        def ask(model: str, target: str) -> Any:
            return client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "alpha beta question?"}],
                extra_headers={"x-tokenomy-route-target": target})

        raw = ask("tokenomy/auto", "share=0.5")
        assert raw.headers["x-tokenomy-cascade"] in ("kept", "escalated")
        assert "auto: the cascade beat the router and the hull" in raw.headers["x-tokenomy-route-reason"]
        for model, target in (("tokenomy/auto", "quality=0.95"), ("tokenomy/auto", "share=0"),
                              ("tokenomy/plain", "share=0.5")):
            raw = ask(model, target)
            assert "x-tokenomy-cascade" not in raw.headers, (model, target)


@contextlib.contextmanager
def auto_and_plain(router: Path, home: Path) -> Iterator[openai.OpenAI]:
    """A gateway serving the router at ``router`` twice, ``tokenomy/auto`` (``policy: auto``) and ``tokenomy/plain``,
    both of its models on the echo upstream; an SDK client for it."""
    from tokenomy.config.settings import RouterConfig

    price = PriceOverride(input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"))
    with run_fault_upstream() as (base, _):
        deployments = [DeploymentConfig(name=m, provider="openai_compatible", model=m, upstream_model="echo",
                                        base_url=base, price=price) for m in (CHEAP_2, BIG_2)]
        routers = {"auto": RouterConfig(path=str(router), policy="auto"), "plain": RouterConfig(path=str(router))}
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                            ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                            routing=RoutingConfig(routers=routers, hold_window=0))
        with run_gateway(settings) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
