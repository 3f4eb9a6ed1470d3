"""Batches on a PostgreSQL ledger: lines run as procrastinate jobs by any replica's worker, file contents live in
the database, and a replica killed with SIGKILL mid-batch has its lines finished by another: every custom_id once
in the output and once in the ledger."""

from __future__ import annotations

import io
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import psycopg
import pytest
from tests.batch.parts import chat_lines, result_rows, wait_for
from tests.scale.parts import fresh_database, record

from servers import free_port, run_fault_upstream, run_gateway, start_serve
from tokenomy.config.settings import BatchConfig, BatchJobsConfig, DeploymentConfig, LedgerConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream

FAST_JOBS = BatchJobsConfig(chunk_lines=25, lane_concurrency=4, heartbeat_s=0.5, stalled_after_s=3.0, sweep_s=0.5)








def _ledger_lines(url: str) -> Counter[str]:
    with psycopg.connect(url) as conn:
        return Counter(rid for (rid,) in conn.execute(
            "SELECT id FROM requests WHERE endpoint = 'batch.chat.completions'"))


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def upstream() -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as pair:
        yield pair


def test_a_batch_on_postgres_runs_in_chunks_exactly_once(database: str, tmp_path: Path,
                                                         fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    settings = Settings(
        deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo", base_url=base)],
        local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path / "home"),
        ledger=LedgerConfig(database_url=database, reference_model=None),
        batch=BatchConfig(max_concurrency=16, jobs=FAST_JOBS))
    n = 300
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        source = client.files.create(file=("b.jsonl", io.BytesIO(chat_lines(n, "echo", "pg"))), purpose="batch")
        assert client.files.content(source.id).content == chat_lines(n, "echo", "pg")  # contents from the database
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        done = wait_for(client, batch.id, timeout_s=120)
        output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    assert done.status == "completed" and errors == []
    assert sorted(row["custom_id"] for row in output) == sorted(f"pg-{i}" for i in range(n))
    assert [row["custom_id"] for row in output] == [f"pg-{i}" for i in range(n)]  # in input order
    assert _ledger_lines(database) == Counter({row["response"]["request_id"]: 1 for row in output})
    assert not (tmp_path / "home" / "files").exists()  # nothing on local disk
    with psycopg.connect(database) as conn:
        (left,) = conn.execute("SELECT COUNT(*) FROM procrastinate_jobs WHERE status <> 'succeeded'").fetchone() or (0,)
    assert left == 0  # succeeded jobs are deleted; none failed or is still waiting




def test_a_replica_killed_mid_batch_has_its_lines_finished_by_another(database: str, tmp_path: Path,
                                                                      upstream: tuple[str, FaultUpstream]) -> None:
    base, fake = upstream
    cfg = tmp_path / "c.yaml"
    cfg.write_text("local: {enabled: false}\nenv_providers: false\nserver: {log_level: warning}\n"
                   "ledger: {reference_model: null}\n"
                   "batch: {max_concurrency: 16, jobs: {chunk_lines: 25, lane_concurrency: 4, heartbeat_s: 0.5, "
                   "stalled_after_s: 3, sweep_s: 0.5, worker_jobs: 2}}\n"
                   f"deployments:\n  - {{name: slow, provider: openai_compatible, model: slow, "
                   f"upstream_model: sleep-40, base_url: '{base}'}}\n")
    env = {**os.environ, "TOKENOMY_HOME": str(tmp_path / "home"), "TOKENOMY_DATABASE_URL": database}
    ports = [free_port(), free_port()]
    doomed, survivor = (start_serve(cfg, port, env) for port in ports)
    n = 600  # 24 chunks in 4 lanes; each replica takes at most 2 jobs at once, so both run lanes of the batch
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{ports[1]}/v1", api_key="unused", max_retries=2)
    try:
        source = client.files.create(file=("k.jsonl", io.BytesIO(chat_lines(n, "slow", "kill"))), purpose="batch")
        batch = client.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        deadline = time.monotonic() + 60
        with psycopg.connect(database, autocommit=True) as conn:
            while True:  # a quarter done, and chunks running on both replicas
                (running_on,) = conn.execute("SELECT COUNT(DISTINCT worker_id) FROM procrastinate_jobs "
                                             "WHERE status = 'doing'").fetchone() or (0,)
                done_lines = client.batches.retrieve(batch.id).request_counts.completed or 0  # type: ignore[union-attr]
                if done_lines >= n // 4 and running_on == 2:
                    break
                assert time.monotonic() < deadline, (done_lines, running_on)
                time.sleep(0.02)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        assert sum(fake.answered.values()) < n, "the batch finished before the kill; the test proves nothing"
        done = wait_for(client, batch.id, timeout_s=120)
        output, errors = result_rows(client, done.output_file_id), result_rows(client, done.error_file_id)
    finally:
        for proc in (doomed, survivor):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
    assert done.status == "completed" and errors == []
    assert sorted(row["custom_id"] for row in output) == sorted(f"kill-{i}" for i in range(n))
    assert _ledger_lines(database) == Counter({row["response"]["request_id"]: 1 for row in output})
    # only lines in flight on the killed replica (its jobs x 4 lines), or finished while a commit ran, ran twice
    twice = [text for text, count in fake.answered.items() if count > 1]
    record("batch_replica_sigkill", lines=n, completed=len(output), ledger_rows=sum(_ledger_lines(database).values()),
           answered_twice=len(twice), done_before_kill=done_lines)
    assert len(twice) <= 2 * 16
    assert all(count <= 2 for count in fake.answered.values())
