"""A learned router falls back to its own next-best model: a router trained (real MiniLM) on the GSM8K fixture,
served as ``tokenomy/<name>`` in front of fault-upstream deployments named after the fixture's models, the chosen
model's upstream failing; driven with the OpenAI SDK. ``share=0`` routes nearly every prompt to the cheap model
(its next choice is then the frontier); the tests read which model the router chose from the route reason."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.control.parts import MASTER, admin, priced
from tests.routing.conftest import GSM8K

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import (
    CacheConfig,
    ControlConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LedgerConfig,
    LocalConfig,
    RetryConfig,
    RouterConfig,
    RoutingConfig,
    Settings,
    load_settings,
)
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.errors import ConfigError
from tokenomy.providers.registry import Deployment
from tokenomy.routing.outcomes import read_outcomes
from tokenomy.routing.router import Decision
from tokenomy.routing.serve import ranked_served
from tokenomy.testing.fault_upstream import FaultUpstream
from tokenomy.wire.validation import validate_chat

FRONTIER, CHEAP = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
NOTE = f"; {CHEAP} failed, served by {FRONTIER} (router's next choice)"
RETRY = RetryConfig(cooldown_s=0)  # a failed deployment is tried again by the next request (exact ledger rows)


def _settings(home: Path, base: str, router: Path, cheap: str, frontier: str = "echo") -> Settings:
    deployments = [DeploymentConfig(name=FRONTIER, provider="openai_compatible", model=FRONTIER,
                                    upstream_model=frontier, base_url=base, max_retries=0),
                   DeploymentConfig(name=CHEAP, provider="openai_compatible", model=CHEAP, upstream_model=cheap,
                                    base_url=base, max_retries=0)]
    routers = {"next": RouterConfig(path=str(router), target="share=0"),
               "strict": RouterConfig(path=str(router), target="share=0", fallback="none")}
    return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                    routing=RoutingConfig(routers=routers), cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
                    retry=RETRY)


@pytest.fixture(scope="module")
def failing_cheap(router_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[openai.OpenAI, Path, FaultUpstream]]:
    """The cheap model's upstream answers 500; the frontier's echoes."""
    home = tmp_path_factory.mktemp("fallback-home")
    with run_fault_upstream() as (base, upstream), run_gateway(_settings(home, base, router_dir, "error-500")) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), home / "ledger.db", upstream


def _prompts() -> list[str]:
    return [row.prompt for row in read_outcomes([GSM8K]).evaluation_rows()[:20]]


def _chose(reason: str) -> str:
    """The model the router chose, from a route reason ``<router>: target ... (<source>); <model> expected ..."""
    return reason.split("; ")[1].split(" expected ")[0]


def _ask(client: openai.OpenAI, prompt: str, model: str, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **extra)


def _row(ledger: Path, rid: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(ledger) as db:
            row = db.execute("SELECT requested_model, deployment, route_reason, status FROM requests WHERE id = ?",
                             (rid,)).fetchone()
            calls = db.execute("SELECT deployment, outcome FROM calls WHERE request_id = ? ORDER BY attempt",
                               (rid,)).fetchall()
        if row is not None:
            return row, calls
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {rid}")


def test_a_failing_choice_is_answered_by_the_routers_next_choice(
        failing_cheap: tuple[openai.OpenAI, Path, FaultUpstream]) -> None:
    client, ledger, upstream = failing_cheap
    raws = [_ask(client, p, "tokenomy/next") for p in _prompts()[:4]]
    fell_back = [r for r in raws if _chose(r.headers["x-tokenomy-route-reason"]) == CHEAP]
    assert len(fell_back) >= 3 and upstream.calls["error-500"] >= len(fell_back)  # share=0: nearly all cheap
    for raw in fell_back:
        reason = raw.headers["x-tokenomy-route-reason"]
        assert reason.startswith(f"next: target share=0 (config); {CHEAP} expected ") and reason.endswith(NOTE)
        assert raw.headers["x-tokenomy-route"] == FRONTIER and raw.headers["x-tokenomy-deployment"] == FRONTIER
        assert raw.parse().choices[0].message.content.startswith("echo: ")
        row, calls = _row(ledger, raw.headers["x-request-id"])
        assert row == ("tokenomy/next", FRONTIER, reason, 200)
        assert calls == [(CHEAP, "error"), (FRONTIER, "ok")]  # each deployment once, the chosen one first


def test_fallback_none_keeps_the_error(failing_cheap: tuple[openai.OpenAI, Path, FaultUpstream]) -> None:
    client, ledger, upstream = failing_cheap
    before = upstream.calls["echo"]
    failures = []
    for prompt in _prompts()[:4]:
        try:
            _ask(client, prompt, "tokenomy/strict")
        except openai.APIStatusError as exc:
            failures.append(exc)
    assert len(failures) >= 3
    for exc in failures:
        assert exc.status_code == 502 and "x-tokenomy-route" not in exc.response.headers
        row, calls = _row(ledger, exc.response.headers["x-request-id"])
        assert _chose(row[2]) == CHEAP and row[3] == 502 and "next choice" not in row[2]
        assert calls == [(CHEAP, "error")]
    assert upstream.calls["echo"] - before == 4 - len(failures)  # only the prompts routed to the frontier


def test_plain_requests_do_not_fall_back(failing_cheap: tuple[openai.OpenAI, Path, FaultUpstream]) -> None:
    client, _, _ = failing_cheap
    with pytest.raises(openai.APIStatusError) as caught:
        _ask(client, "hello", CHEAP)
    assert caught.value.status_code == 502


def test_a_stream_falls_back_before_its_first_chunk(failing_cheap: tuple[openai.OpenAI, Path, FaultUpstream]
                                                    ) -> None:
    client, ledger, _ = failing_cheap
    seen = []
    for prompt in _prompts()[4:8]:
        with client.chat.completions.with_streaming_response.create(
                model="tokenomy/next", stream=True, messages=[{"role": "user", "content": prompt}]) as raw:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
            headers = raw.headers
        assert text == f"echo: {prompt}"
        if _chose(headers["x-tokenomy-route-reason"]) == CHEAP:
            seen.append(headers)
    assert len(seen) >= 3
    for headers in seen:
        assert headers["x-tokenomy-route"] == FRONTIER and headers["x-tokenomy-deployment"] == FRONTIER
        assert headers["x-tokenomy-route-reason"].endswith(NOTE)
        row, calls = _row(ledger, headers["x-request-id"])
        assert row[1:] == (FRONTIER, headers["x-tokenomy-route-reason"], 200)
        assert calls == [(CHEAP, "error"), (FRONTIER, "ok")]


def test_a_stream_that_broke_after_its_first_chunk_does_not_fall_back(router_dir: Path, tmp_path: Path) -> None:
    with run_fault_upstream() as (base, upstream), \
            run_gateway(_settings(tmp_path, base, router_dir, "break-stream")) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        broke = []
        for prompt in _prompts()[:4]:
            with client.chat.completions.with_streaming_response.create(
                    model="tokenomy/next", stream=True, messages=[{"role": "user", "content": prompt}]) as raw:
                if _chose(raw.headers["x-tokenomy-route-reason"]) != CHEAP:
                    continue
                assert raw.headers["x-tokenomy-route"] == CHEAP  # the cheap model's first chunk was sent
                with pytest.raises(openai.APIError):
                    for _ in raw.parse():
                        pass
                broke.append(raw.headers["x-request-id"])
        assert len(broke) >= 3 and upstream.calls["echo"] <= 4 - len(broke)  # the frontier never took them
        for rid in broke:
            row, calls = _row(tmp_path / "ledger.db", rid)
            assert row[1] == CHEAP and "next choice" not in row[2] and [c[0] for c in calls] == [CHEAP]


def test_batch_lines_fall_back_too(failing_cheap: tuple[openai.OpenAI, Path, FaultUpstream]) -> None:
    from tests.batch.parts import result_rows, wait_for

    client, ledger, _ = failing_cheap
    lines = "".join(json.dumps({"custom_id": f"fb-{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "tokenomy/next", "messages": [{"role": "user", "content": p}]}})
                    + "\n" for i, p in enumerate(_prompts()[8:11]))
    source = client.files.create(file=("fb.jsonl", io.BytesIO(lines.encode())), purpose="batch")
    batch = wait_for(client, client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                                   completion_window="24h").id, timeout_s=60)
    assert batch.status == "completed", batch
    rows = result_rows(client, batch.output_file_id)
    assert len(rows) == 3 and all(r["response"]["status_code"] == 200 for r in rows)
    reasons = [_row(ledger, r["response"]["request_id"]) for r in rows]
    fell_back = [(row, calls) for row, calls in reasons if _chose(row[2]) == CHEAP]
    assert len(fell_back) >= 2
    for row, calls in fell_back:
        assert row[1] == FRONTIER and row[2].endswith(NOTE) and calls == [(CHEAP, "error"), (FRONTIER, "ok")]


def test_a_budget_reservation_covers_the_next_choice(router_dir: Path, tmp_path: Path) -> None:
    """The key's budget covers many cheap calls but not one frontier call. Two requests routed to the cheap model
    (whose upstream fails) arrive together: the first reserved the frontier's worst case too, so the second waits
    for it, finds the budget spent and is refused; reserving only the cheap chain would let both spend on the
    frontier."""
    home = tmp_path / "home"
    with run_fault_upstream() as (base, _):
        deployments = [priced(FRONTIER, base, "sleep-1500", input_usd="1000", output_usd="1000", max_retries=0),
                       priced(CHEAP, base, "error-500", input_usd="1", output_usd="1", max_retries=0)]
        settings = Settings(deployments=deployments, local=LocalConfig(enabled=False), env_providers=False,
                            home=str(home), control=ControlConfig(master_key=MASTER),
                            cache=CacheConfig(exact=ExactCacheConfig(mode="off")), retry=RETRY,
                            routing=RoutingConfig(routers={"next": RouterConfig(path=str(router_dir),
                                                                                target="share=0")}))
        with run_gateway(settings) as url:
            probe = openai.OpenAI(base_url=url, max_retries=0,
                                  api_key=admin(url, "POST", "/admin/keys", {"name": "probe"})[1]["key"])
            prompt = next(p for p in _prompts() if _chose(_ask(probe, p, "tokenomy/next", max_tokens=20).headers[
                "x-tokenomy-route-reason"]) == CHEAP)
            tight = admin(url, "POST", "/admin/keys", {"name": "tight", "budget_usd": "0.01"})[1]
            client = openai.OpenAI(base_url=url, api_key=tight["key"], max_retries=0, timeout=30)
            outcomes: list[Any] = [None, None]

            def one(i: int) -> None:
                try:
                    outcomes[i] = _ask(client, prompt, "tokenomy/next", max_tokens=20)
                except openai.APIStatusError as exc:
                    outcomes[i] = exc

            threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
            threads[0].start()
            time.sleep(0.3)  # the first is at the frontier (1.5 s) with its reservation when the second comes
            threads[1].start()
            for t in threads:
                t.join(30)
            spent = admin(url, "GET", f"/admin/keys/{tight['id']}")[1]["budgets"][0]
    served = [o for o in outcomes if not isinstance(o, openai.APIStatusError)]
    refused = [o for o in outcomes if isinstance(o, openai.APIStatusError)]
    assert len(served) == 1 and len(refused) == 1, outcomes
    assert refused[0].status_code == 429 and isinstance(refused[0].body, dict)
    assert refused[0].body["code"] == "insufficient_quota"
    assert served[0].headers["x-tokenomy-route"] == FRONTIER
    assert Decimal(spent["spent_usd"]) == Decimal(served[0].headers["x-tokenomy-cost-usd"]) > Decimal("0.01")
    assert spent["reserved_usd"] == "0"


def test_next_choices_are_ranked_by_the_routers_objective_and_chains_are_not_repeated() -> None:
    decision = Decision(model="a", expected_scores={"a": 0.9, "b": 0.6, "c": 0.7, "d": 0.6},
                        expected_costs_usd={"a": 1.0, "b": 0.02, "c": 0.5, "d": 0.01}, reason="", lam=0.0)
    assert ranked_served(decision, lambda m: m != "c") == ["a", "d", "b"]  # b and d tie: the cheaper first

    class _Unused:
        async def chat(self, call: Any) -> Any:
            raise AssertionError("not called")

    deps = [Deployment(DeploymentConfig(name=n, provider="openai_compatible", model=n, base_url="http://x"),
                       _Unused()) for n in ("a", "b", "c")]
    dispatcher = Dispatcher(Catalog(deps, fallbacks={"a": ["b"]}), RetryConfig())
    chat = validate_chat({"model": "a", "messages": [{"role": "user", "content": "q"}]})
    assert [(m, d.name) for m, d in dispatcher._ordered(chat, ("b", "c"))] == [("a", "a"), ("a", "b"), ("c", "c")]
    assert [(m, d.name) for m, d in dispatcher._ordered(chat)] == [("a", "a"), ("a", "b")]
    dispatcher._cooldowns.mark_failed("a")  # the chosen model's deployment just failed: healthy ones first
    assert [(m, d.name) for m, d in dispatcher._ordered(chat, ("c",))] == [("a", "b"), ("c", "c")]


@pytest.mark.parametrize("value", ["sometimes", "true", ""])
def test_a_bad_fallback_value_is_a_one_line_startup_error(tmp_path: Path, value: str) -> None:
    config = tmp_path / "tokenomy.yaml"
    config.write_text(f"routing:\n  routers:\n    x: {{path: /srv/r, fallback: '{value}'}}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(config), env={})
    message = caught.value.message
    assert "key 'routing.routers.x.fallback'" in message and repr(value) in message and "\n" not in message
    config.write_text("routing:\n  routers:\n    x: {path: /srv/r, fallback: none}\n")
    assert load_settings(str(config), env={}).routing.routers["x"].fallback == "none"
    config.write_text("routing:\n  routers:\n    x: {path: /srv/r}\n")
    assert load_settings(str(config), env={}).routing.routers["x"].fallback == "next"
