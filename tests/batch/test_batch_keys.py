"""Batches under team control: a key sees only its own files and batches, and a batch's lines spend the key's
budget like its live requests (a spent budget fails the rest of the lines; it does not stall the batch)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.control.parts import MASTER, admin, priced

from servers import run_gateway
from tokenomy.config.settings import (
    BatchConfig,
    CacheConfig,
    ControlConfig,
    ExactCacheConfig,
    LocalConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream


def _lines(n: int) -> bytes:
    return "".join(json.dumps({"custom_id": f"k{i}", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "echo", "max_tokens": 4,
                                        "messages": [{"role": "user", "content": f"line {i} " + "w " * 20}]}}) + "\n"
                   for i in range(n)).encode()


def _wait(client: openai.OpenAI, batch_id: str) -> Any:
    deadline = time.monotonic() + 60
    while (batch := client.batches.retrieve(batch_id)).status not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
    return batch


def test_keys_see_their_own_batches_and_spend_their_budget(tmp_path: Path, fault: tuple[str, FaultUpstream]
                                                           ) -> None:
    base, _ = fault
    settings = Settings(deployments=[priced("echo", base, "echo", input_usd="1000", output_usd="1000")],
                        local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path),
                        control=ControlConfig(master_key=MASTER), batch=BatchConfig(max_concurrency=2),
                        cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
    with run_gateway(settings) as url:
        # one line costs about 50 tokens × $1000/1M ≈ $0.05: $0.2 covers a handful of the 20
        status, alice = admin(url, "POST", "/admin/keys", {"name": "alice", "budget_usd": "0.2"})
        assert status == 201, alice
        _, bob = admin(url, "POST", "/admin/keys", {"name": "bob"})
        as_alice = openai.OpenAI(base_url=url, api_key=alice["key"], max_retries=0)
        as_bob = openai.OpenAI(base_url=url, api_key=bob["key"], max_retries=0)
        source = as_alice.files.create(file=("a.jsonl", io.BytesIO(_lines(20))), purpose="batch")
        with pytest.raises(openai.NotFoundError):
            as_bob.files.retrieve(source.id)
        with pytest.raises(openai.NotFoundError):  # bob cannot run alice's file either
            as_bob.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
        batch = as_alice.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                        completion_window="24h")
        assert batch.id not in {b.id for b in as_bob.batches.list()}
        with pytest.raises(openai.NotFoundError):
            as_bob.batches.retrieve(batch.id)
        done = _wait(as_alice, batch.id)
        assert done.status == "completed"
        counts = done.request_counts
        assert counts is not None and counts.total == 20 and 1 <= counts.completed < 20
        errors = [json.loads(x) for x in as_alice.files.content(str(done.error_file_id)).text.splitlines()]
        assert {e["response"]["body"]["error"]["code"] for e in errors} == {"insufficient_quota"}
        master = openai.OpenAI(base_url=url, api_key=MASTER, max_retries=0)
        assert batch.id in {b.id for b in master.batches.list()}  # the master key sees every batch
        output = [json.loads(x) for x in as_alice.files.content(str(done.output_file_id)).text.splitlines()]
        line_cost = [u["total_tokens"] * 1000 / 1e6 for u in (o["response"]["body"]["usage"] for o in output)]
        _, key = admin(url, "GET", f"/admin/keys/{alice['id']}")
        spent = sum(float(b["spent_usd"]) for b in key["budgets"])
        assert spent == pytest.approx(sum(line_cost))  # the key paid for exactly the lines that ran
        assert spent <= 0.2 + max(line_cost) + 1e-9  # at most one line past the budget, as for live requests
