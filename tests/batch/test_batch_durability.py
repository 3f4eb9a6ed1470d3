"""Nothing lost, nothing twice: a 10,000-line batch through 429s and 500s, and a gateway killed with SIGKILL in the
middle of a batch, restarted, finishing it. Every custom_id must appear exactly once in the output (or error) file
and once in the ledger."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests.batch.parts import chat_lines, result_rows, wait_for

from servers import free_port, run_fault_upstream, run_gateway, start_serve
from tokenomy.config.settings import BatchConfig, DeploymentConfig, LedgerConfig, LocalConfig, RetryConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def _ledger_lines(db: Path) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        return Counter(rid for (rid,) in conn.execute(
            "SELECT id FROM requests WHERE endpoint = 'batch.chat.completions'"))


def test_ten_thousand_lines_through_429s_and_500s(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, upstream = fault
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        deployments=[DeploymentConfig(name="chaos", provider="openai_compatible", model="chaos",
                                      upstream_model=f"chaos-8-4-{tag}", base_url=base)],
        retry=RetryConfig(max_retries=1, base_delay_ms=1, max_delay_ms=2, cooldown_s=0.0),
        local=LocalConfig(enabled=False), ledger=LedgerConfig(reference_model=None), home=str(tmp_path),
        batch=BatchConfig(max_concurrency=64, line_retries=5, max_backoff_s=0.05))
    n = 10_000
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        source = client.files.create(file=("big.jsonl", io.BytesIO(chat_lines(n, "chaos", tag))), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        done = wait_for(client, batch.id, timeout_s=600)
        output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    assert done.status == "completed"
    ids = Counter(row["custom_id"] for row in output + errors)
    assert len(ids) == n and set(ids.values()) == {1}
    # a 429 never fails a line; a 500 is retried until it passes, so every line ends answered
    assert len(output) == n and errors == []
    assert upstream.calls[f"chaos-8-4-{tag}"] > n  # the chaos was real: there were retries
    ledger = _ledger_lines(tmp_path / "ledger.db")
    assert ledger == Counter({row["response"]["request_id"]: 1 for row in output})
    assert done.request_counts is not None and done.request_counts.completed == n


@pytest.fixture
def upstream() -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as pair:
        yield pair




def test_sigkill_mid_batch_then_restart_finishes_exactly_once(tmp_path: Path,
                                                              upstream: tuple[str, FaultUpstream]) -> None:
    base, fake = upstream
    cfg = tmp_path / "c.yaml"
    cfg.write_text("local: {enabled: false}\nenv_providers: false\nserver: {log_level: warning}\n"
                   "ledger: {reference_model: null}\nbatch: {max_concurrency: 8}\n"
                   f"deployments:\n  - {{name: slow, provider: openai_compatible, model: slow, "
                   f"upstream_model: sleep-40, base_url: '{base}'}}\n")
    env = {**os.environ, "TOKENOMY_HOME": str(tmp_path / "home")}
    port = free_port()
    n = 400
    proc = start_serve(cfg, port, env)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=2)
    try:
        source = client.files.create(file=("k.jsonl", io.BytesIO(chat_lines(n, "slow", "kill"))), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 60
        while (client.batches.retrieve(batch.id).request_counts.completed or 0) < n // 4:  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    before = sum(fake.answered.values())
    assert before < n, "the batch finished before the kill; the test proves nothing"
    proc = start_serve(cfg, port, env)
    try:
        done = wait_for(client, batch.id, timeout_s=120)
        output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert done.status == "completed" and errors == []
    assert sorted(row["custom_id"] for row in output) == sorted(f"kill-{i}" for i in range(n))
    ledger = _ledger_lines(tmp_path / "home" / "ledger.db")
    assert ledger == Counter({row["response"]["request_id"]: 1 for row in output})
    # only lines in flight at the kill (at most max_concurrency = 8), or finished while the last commit ran (at
    # most as many again), reached the upstream twice
    twice = [text for text, count in fake.answered.items() if count > 1]
    assert len(twice) <= 16
    assert all(count <= 2 for count in fake.answered.values())
