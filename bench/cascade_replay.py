"""The gateway's cascade against the offline evaluation, on real recorded answers.

A replay upstream answers each (model, prompt) of an outcomes file with the model's recorded ``response`` (the
RouteLLM GSM8K file records both models' answers), so the gateway's ``policy: cascade`` router sees exactly the
cheap answers the offline evaluation saw. For each target, every test prompt goes through the gateway with the
official OpenAI SDK; the served model's recorded score is the answer's score, and the cost is the ledger's. The
same router's check is then run offline on the same prompts and answers (``Router.escalation_gain``): the live
escalations must be the offline ones, row for row (so the gateway runs with ``routing.hold_window: 0``: the margins
from training, not held on the traffic).

    python bench/cascade_replay.py --router /tmp/r_gsm8k --data shared/data/routing/routellm_gsm8k.jsonl \\
        --prices tests/routing/data/routellm.models.json [--target share=0.3 ...] [--concurrency 8]

Prints a table and, with ``--json``, the figures. Nothing is fitted here; the router is the one given.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import openai
import orjson
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' loopback servers

from servers import run_aiohttp, run_gateway
from tokenomy.config.settings import (
    DeploymentConfig,
    LedgerConfig,
    LocalConfig,
    PriceOverride,
    RouterConfig,
    RoutingConfig,
    Settings,
)
from tokenomy.routing.calibrate import parse_target
from tokenomy.routing.outcomes import OutcomeRow, read_outcomes, read_prices
from tokenomy.routing.router import Router
from tokenomy.tokens.counter import TokenCounter


class Replay:
    """Answers ``model`` on a prompt with that model's recorded response (404 when none is recorded)."""

    def __init__(self, rows: list[OutcomeRow]) -> None:
        self.answers = {(m, r.prompt): o.response for r in rows for m, o in r.outcomes.items() if o.response}
        self.calls = 0
        self.counter = TokenCounter()  # usage in cl100k tokens, as the offline evaluation counts them

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        answer = self.answers.get((body["model"], prompt))
        if answer is None:
            return web.json_response({"error": {"message": "no recorded answer", "type": "not_found"}}, status=404)
        self.calls += 1
        prompt_tokens = self.counter.count_text(prompt, "gpt-4")
        output_tokens = self.counter.count_text(answer, "gpt-4")
        return web.json_response({
            "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
                      "total_tokens": prompt_tokens + output_tokens}})


def settings(home: Path, base: str, router: Path, models: list[str], prices: dict[str, Any],
             targets: list[str]) -> Settings:
    deployments = [DeploymentConfig(name=m, provider="openai_compatible", model=m, base_url=base, max_retries=0,
                                    price=PriceOverride(input_usd_per_mtok=Decimal(str(prices[m].input_usd_per_mtok)),
                                                        output_usd_per_mtok=Decimal(str(prices[m].output_usd_per_mtok))))
                   for m in models]
    routers = {f"c{i}": RouterConfig(path=str(router), policy="cascade", target=t) for i, t in enumerate(targets)}
    return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    ledger=LedgerConfig(database_url=str(home / "ledger.db")), deployments=deployments,
                    routing=RoutingConfig(routers=routers, hold_window=0))  # the trained margins, row for row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--router", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--prices", type=Path, required=True)
    ap.add_argument("--target", action="append", default=None, help="share=S (repeatable; default 0.1 0.3 0.5)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    targets = args.target or ["share=0.1", "share=0.3", "share=0.5"]
    data = read_outcomes([args.data])
    rows = [r for r in data.evaluation_rows() if all(o.response for o in r.outcomes.values())]
    router = Router.load(args.router)
    check = router.state.cascade
    if check is None:
        raise SystemExit("error: the router has no cascade check")
    prices = read_prices(args.prices)
    score = {(m, r.prompt): o.score for r in rows for m, o in r.outcomes.items()}
    offline_gain = router.escalation_gain(router.features([r.prompt for r in rows], [None] * len(rows)),
                                          [r.outcomes[check.cheap].response or "" for r in rows])
    results = []
    with tempfile.TemporaryDirectory() as home, run_aiohttp(_app(Replay(rows))) as upstream, \
            run_gateway(settings(Path(home), f"{upstream}/v1", args.router, [check.frontier, check.cheap], prices,
                                 targets)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
        for i, target in enumerate(targets):
            started = time.monotonic()

            def ask(row: OutcomeRow, name: str = f"tokenomy/c{i}") -> tuple[str, str, str]:
                raw = client.chat.completions.with_raw_response.create(
                    model=name, messages=[{"role": "user", "content": row.prompt}])
                return raw.headers["x-tokenomy-route"], raw.headers["x-tokenomy-cascade"], raw.headers["x-request-id"]

            with ThreadPoolExecutor(args.concurrency) as pool:
                live = list(pool.map(ask, rows))
            seconds = time.monotonic() - started
            escalated = np.array([verdict == "escalated" for _, verdict, _ in live])
            margin = router.cascade_margin(parse_target(target), None)
            offline = offline_gain > margin
            time.sleep(1.0)  # the ledger writer's group commit
            with sqlite3.connect(Path(home) / "ledger.db") as db:
                costs = dict(db.execute("SELECT id, cost_pusd FROM requests"))
            cost = [costs.get(rid) for _, _, rid in live]
            results.append({
                "target": target, "rows": len(rows), "escalated_share": float(escalated.mean()),
                "offline_escalated_share": float(offline.mean()),
                "rows_differing_from_offline": int((escalated != offline).sum()),
                "mean_score": float(np.mean([score[(model, r.prompt)] for (model, _, _), r in zip(live, rows,
                                                                                              strict=True)])),
                "cheap_score": float(np.mean([score[(check.cheap, r.prompt)] for r in rows])),
                "frontier_score": float(np.mean([score[(check.frontier, r.prompt)] for r in rows])),
                "usd_per_1k": None if None in cost else sum(c or 0 for c in cost) / 1e12 / len(rows) * 1000,
                "requests_per_s": len(rows) / seconds})
    if args.json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("| target | escalated (live / offline) | rows differing | mean score | cheap / frontier alone | "
              "USD/1k (ledger) | req/s |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            usd = "?" if r["usd_per_1k"] is None else f"{r['usd_per_1k']:.3f}"
            print(f"| {r['target']} | {r['escalated_share']:.3f} / {r['offline_escalated_share']:.3f} | "
                  f"{r['rows_differing_from_offline']} | {r['mean_score']:.3f} | {r['cheap_score']:.3f} / "
                  f"{r['frontier_score']:.3f} | {usd} | {r['requests_per_s']:.1f} |")
    return 0


def _app(replay: Replay) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", replay.chat)
    return app


if __name__ == "__main__":
    raise SystemExit(main())
