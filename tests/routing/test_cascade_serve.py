"""The cascade policy in the gateway: a router trained (real MiniLM) on the GSM8K fixture with the cheap model's
responses, served as ``tokenomy/<name>`` with ``policy: cascade`` in front of fault-upstream deployments named
after the fixture's models; driven with the OpenAI SDK. The upstream echoes, so the check's gain is whatever it
is for "echo: <prompt>"; the margins below make escalation certain or impossible, and a share target sits
between."""

from __future__ import annotations

import json
import sqlite3
import time
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
)
from tokenomy.errors import ConfigError, TargetError
from tokenomy.routing.calibrate import parse_target
from tokenomy.routing.cascade import share_margin
from tokenomy.routing.outcomes import read_outcomes, read_prices
from tokenomy.routing.router import Router
from tokenomy.routing.serve import RouterSet

FRONTIER, CHEAP = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
PRICE = PriceOverride(input_usd_per_mtok=Decimal("1"), output_usd_per_mtok=Decimal("1"))


@pytest.fixture(scope="module")
def cascade_dir(tmp_path_factory: pytest.TempPathFactory, counter: Any) -> Path:
    from tokenomy.embeddings.minilm import MiniLMEmbedder
    from tokenomy.routing.train import train

    embedder = MiniLMEmbedder.load()
    out = tmp_path_factory.mktemp("gsm8k-cascade")
    report = train([GSM8K], out, embed=lambda texts: embedder.embed(texts).vectors, counter=counter,
                   prices=read_prices(ROUTELLM_PRICES))
    assert report["cascade"]["trained"] is True
    return out


def _settings(home: Path, base: str, router: Path, cheap: str = "echo", frontier: str = "echo") -> Settings:
    deployments = [DeploymentConfig(name=FRONTIER, provider="openai_compatible", model=FRONTIER,
                                    upstream_model=frontier, base_url=base, price=PRICE, max_retries=0),
                   DeploymentConfig(name=CHEAP, provider="openai_compatible", model=CHEAP, upstream_model=cheap,
                                    base_url=base, price=PRICE, max_retries=0)]
    routers = {"cascade": RouterConfig(path=str(router), policy="cascade"),
               "always": RouterConfig(path=str(router), policy="cascade", margin=-100.0),
               "never": RouterConfig(path=str(router), policy="cascade", margin=100.0)}
    return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                    routing=RoutingConfig(routers=routers))


@pytest.fixture(scope="module")
def gateway(cascade_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Path]]:
    home = tmp_path_factory.mktemp("cascade-home")
    with run_fault_upstream() as (base, _), run_gateway(_settings(home, base, cascade_dir)) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), home / "ledger.db"


def _prompts() -> list[str]:
    return [row.prompt for row in read_outcomes([GSM8K]).evaluation_rows()[:20]]


def _ask(client: openai.OpenAI, prompt: str, model: str, target: str | None = None) -> Any:
    headers = {"x-tokenomy-route-target": target} if target else None
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], extra_headers=headers)


def _ledger(ledger: Path, rid: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(ledger) as db:
            row = db.execute("SELECT requested_model, deployment, attempts, cost_pusd, route_reason, status "
                             "FROM requests WHERE id = ?", (rid,)).fetchone()
            calls = db.execute("SELECT attempt, deployment, outcome, cost_pusd FROM calls WHERE request_id = ? "
                               "ORDER BY attempt", (rid,)).fetchall()
        if row is not None:
            return row, calls
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {rid}")


def test_escalated_request_pays_both_calls_in_one_ledger_row(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    prompt = _prompts()[0]
    raw = _ask(client, prompt, "tokenomy/always")
    assert raw.headers["x-tokenomy-cascade"] == "escalated"
    assert raw.headers["x-tokenomy-route"] == FRONTIER and raw.headers["x-tokenomy-deployment"] == FRONTIER
    assert raw.parse().choices[0].message.content == f"echo: {prompt}"
    row, calls = _ledger(ledger, raw.headers["x-request-id"])
    assert row[0] == "tokenomy/always" and row[1] == FRONTIER and row[2] == 2 and row[5] == 200
    assert [(c[0], c[1], c[2]) for c in calls] == [(1, CHEAP, "ok"), (2, FRONTIER, "ok")]
    assert row[3] == sum(c[3] for c in calls) > 0  # the request costs both calls
    assert Decimal(raw.headers["x-tokenomy-cost-usd"]) == Decimal(row[3]) / 10**12
    assert row[4] == raw.headers["x-tokenomy-route-reason"] and row[4].endswith(": escalated")


def test_kept_answer_is_the_cheap_models(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    raw = _ask(client, _prompts()[1], "tokenomy/never")
    assert raw.headers["x-tokenomy-cascade"] == "kept" and raw.headers["x-tokenomy-route"] == CHEAP
    row, calls = _ledger(ledger, raw.headers["x-request-id"])
    assert row[1] == CHEAP and row[2] == 1 and [c[1] for c in calls] == [CHEAP]
    assert "margin 100 (config)" in row[4] and row[4].endswith(": kept")


def test_share_target_header_sets_the_escalation_share(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    prompts = _prompts()
    verdicts = {t: [_ask(client, p, "tokenomy/cascade", t).headers["x-tokenomy-cascade"] for p in prompts]
                for t in ("share=0", "share=1", "share=0.5")}
    assert set(verdicts["share=0"]) == {"kept"} and set(verdicts["share=1"]) == {"escalated"}
    assert "target share=0.5 (header)" in _ask(client, prompts[0], "tokenomy/cascade", "share=0.5").headers[
        "x-tokenomy-route-reason"]


def test_a_cascade_takes_only_share_targets(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, "hello", "tokenomy/cascade", "quality=0.9")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_route_target" and "share=S" in body["message"]


def test_streamed_cascade_replays_the_served_answer(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, _ = gateway
    prompt = _prompts()[2]
    with client.chat.completions.with_streaming_response.create(
            model="tokenomy/always", stream=True, messages=[{"role": "user", "content": prompt}]) as raw:
        assert raw.headers["x-tokenomy-cascade"] == "escalated" and raw.headers["x-tokenomy-route"] == FRONTIER
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == f"echo: {prompt}"


@pytest.mark.parametrize(("cheap", "frontier", "verdict", "served"),
                         [("error-503", "echo", "cheap-failed", FRONTIER),
                          ("echo", "error-503", "escalation-failed", CHEAP)])
def test_a_failed_step_is_answered_by_the_other(cascade_dir: Path, tmp_path: Path, cheap: str, frontier: str,
                                                verdict: str, served: str) -> None:
    with run_fault_upstream() as (base, _), \
            run_gateway(_settings(tmp_path, base, cascade_dir, cheap=cheap, frontier=frontier)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        raw = _ask(client, _prompts()[3], "tokenomy/always")
        assert raw.headers["x-tokenomy-cascade"] == verdict and raw.headers["x-tokenomy-deployment"] == served
        row, calls = _ledger(tmp_path / "ledger.db", raw.headers["x-request-id"])
    assert row[1] == served and row[2] == 2 and sorted(c[2] for c in calls) == ["error", "ok"]


def test_both_steps_failing_is_the_frontiers_error(cascade_dir: Path, tmp_path: Path) -> None:
    with run_fault_upstream() as (base, _), \
            run_gateway(_settings(tmp_path, base, cascade_dir, cheap="error-503", frontier="error-503")) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            _ask(client, _prompts()[4], "tokenomy/always")
        rid = caught.value.response.headers["x-request-id"]
        row, calls = _ledger(tmp_path / "ledger.db", rid)
    assert caught.value.status_code == 503 and row[5] == 503 and [c[2] for c in calls] == ["error", "error"]
    assert row[4].endswith("the escalation failed too")


def test_cascade_startup_errors(cascade_dir: Path, tmp_path: Path, counter: Any) -> None:
    from tests.routing.conftest import hashed_embed

    from tokenomy.routing.train import train

    plain = tmp_path / "plain"  # trained without the cheap model's responses: no check
    data = tmp_path / "no_responses.jsonl"
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    for row in rows:
        for outcome in row["outcomes"].values():
            outcome.pop("response", None)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    train([data], plain, embed=hashed_embed, counter=counter, prices=read_prices(ROUTELLM_PRICES))
    with pytest.raises(ConfigError, match=r"key 'routing\.routers\.c': policy cascade needs a router with a "):
        RouterSet.load(RoutingConfig(routers={"c": RouterConfig(path=str(plain), policy="cascade")}), lambda m: True)
    with pytest.raises(ConfigError, match=f"a cascade serves both {CHEAP} and {FRONTIER}; {FRONTIER} has no "):
        RouterSet.load(RoutingConfig(routers={"c": RouterConfig(path=str(cascade_dir), policy="cascade")}),
                       lambda m: m == CHEAP)
    with pytest.raises(ConfigError, match="a cascade takes share=S targets"):
        RouterSet.load(RoutingConfig(routers={"c": RouterConfig(path=str(cascade_dir), policy="cascade",
                                                                 target="budget=2")}), lambda m: True)


def test_share_margin_escalates_about_that_share(cascade_dir: Path) -> None:
    quantiles = [float(q) for q in range(101)]  # gains 0..100 at quantiles 0..1
    assert share_margin(quantiles, 0.25) == pytest.approx(75.0)
    assert share_margin(quantiles, 1.0) == float("-inf") and share_margin(quantiles, 0.0) == float("inf")
    router = Router.load(cascade_dir)
    assert router.cascade_margin(None, None) == 0.0 and router.cascade_margin(None, 0.2) == 0.2
    gains = [router.gain(p, f"echo: {p}") for p in _prompts()]
    margin = router.cascade_margin(parse_target("share=0.5"), None)
    assert 0 < sum(g > margin for g in gains) < len(gains)  # a middle share escalates some, not all
    with pytest.raises(TargetError):
        router.cascade_margin(parse_target("quality=0.9"), None)


def test_batch_lines_cascade_too(gateway: tuple[openai.OpenAI, Path]) -> None:
    import io

    from tests.batch.parts import chat_lines, result_rows, wait_for

    client, ledger = gateway
    source = client.files.create(file=("casc.jsonl", io.BytesIO(chat_lines(3, "tokenomy/always", "casc"))),
                                 purpose="batch")
    batch = wait_for(client, client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                                   completion_window="24h").id, timeout_s=60)
    assert batch.status == "completed", batch
    rows = result_rows(client, batch.output_file_id)
    assert sorted(r["custom_id"] for r in rows) == ["casc-0", "casc-1", "casc-2"]
    for r in rows:
        assert r["response"]["status_code"] == 200
        row, calls = _ledger(ledger, r["response"]["request_id"])
        assert row[0] == "tokenomy/always" and row[1] == FRONTIER and [c[1] for c in calls] == [CHEAP, FRONTIER]
        assert row[4].endswith(": escalated")


def test_a_repeated_deterministic_cascade_is_served_from_the_cache(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    prompt = _prompts()[5]

    def ask() -> Any:
        return client.chat.completions.with_raw_response.create(
            model="tokenomy/always", temperature=0, messages=[{"role": "user", "content": prompt}])

    first, again = ask(), ask()
    assert first.headers["x-tokenomy-cache"] == "miss" and again.headers["x-tokenomy-cache"] == "hit"
    assert again.headers["x-tokenomy-cascade"] == "escalated" and again.headers["x-tokenomy-route"] == FRONTIER
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    row, calls = _ledger(ledger, again.headers["x-request-id"])
    assert row[3] == 0 and calls == []  # both steps were cache hits: no upstream call, no cost
    assert Decimal(again.headers["x-tokenomy-cost-usd"]) == 0


async def test_a_share_targets_escalations_are_held_on_recent_gains(cascade_dir: Path) -> None:
    from tokenomy.wire.validation import validate_chat

    routers = RouterSet.load(RoutingConfig(routers={"c": RouterConfig(path=str(cascade_dir), policy="cascade")},
                                           hold_window=40), lambda m: True)
    rows = [r for r in read_outcomes([GSM8K]).rows if r.outcomes[CHEAP].response]
    verdicts, margins = [], []
    for row in rows:
        chat = validate_chat({"model": "tokenomy/c", "messages": [{"role": "user", "content": row.prompt}]})
        routed = await routers.route(chat, {"x-tokenomy-route-target": "share=0.25"}, lambda m: True)
        assert routed is not None and routed.cascade is not None
        escalate, _, margin = await routed.cascade.escalate(row.outcomes[CHEAP].response or "")
        verdicts.append(escalate)
        margins.append(margin)
    late = verdicts[80:]
    assert abs(sum(late) / len(late) - 0.25) < 0.1, sum(late) / len(late)
    assert len(set(margins[:39])) == 1 and len(set(margins[40:])) > 1  # calibrated first, then held
