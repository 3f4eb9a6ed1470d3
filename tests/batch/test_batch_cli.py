"""``tokenomy batch`` against a running gateway, as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import free_port, run_gateway
from tokenomy.config.settings import DeploymentConfig, LedgerConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="module")
def url(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base, _ = fault
    settings = Settings(deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo",
                                                      base_url=base)],
                        local=LocalConfig(enabled=False), ledger=LedgerConfig(reference_model=None),
                        home=str(tmp_path_factory.mktemp("cli-home")))
    with run_gateway(settings) as found:
        yield found


def _tokenomy(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOKENOMY_URL", "TOKENOMY_API_KEY")}
    return subprocess.run([sys.executable, "-m", "tokenomy", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def _input(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                                        "body": {"model": "echo", "messages": [{"role": "user", "content": f"n{i}"}]}})
                            + "\n" for i in range(n)))
    return path


def test_submit_wait_writes_results(url: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = _tokenomy("batch", "submit", str(_input(tmp_path / "in.jsonl", 5)), "--wait", "--poll", "0.1",
                     "--out", str(out), "--url", url, "--json", "-m", "team=search")
    assert done.returncode == 0, done.stderr
    batch = json.loads(done.stdout.strip().splitlines()[-1])
    assert batch["status"] == "completed" and batch["metadata"] == {"team": "search"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in rows] == [f"c{i}" for i in range(5)]
    status = _tokenomy("batch", "status", batch["id"], "--url", url)
    assert status.returncode == 0 and "completed  5 done, 0 failed of 5" in status.stdout
    results = _tokenomy("batch", "results", batch["id"], "--url", url)
    assert results.stdout == out.read_text()
    missing = _tokenomy("batch", "results", batch["id"], "--errors", "--url", url)
    assert missing.returncode == 2 and "has no error file" in missing.stderr
    listed = _tokenomy("batch", "list", "--json", "--url", url)
    assert batch["id"] in {b["id"] for b in json.loads(listed.stdout)}
    refused = _tokenomy("batch", "cancel", batch["id"], "--url", url)
    assert refused.returncode == 2 and "HTTP 409" in refused.stderr and "can no longer be cancelled" in refused.stderr


def test_errors_are_one_line(url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "echo"}}\n')
    refused = _tokenomy("batch", "submit", str(bad), "--url", url)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "line 1: body:" in refused.stderr and "messages" in refused.stderr
    down = _tokenomy("batch", "submit", str(_input(tmp_path / "x.jsonl", 1)), "--url",
                     f"http://127.0.0.1:{free_port()}/v1")
    assert down.returncode == 2 and "cannot reach the gateway" in down.stderr and "Traceback" not in down.stderr
    absent = _tokenomy("batch", "submit", str(tmp_path / "nope.jsonl"), "--url", url)
    assert absent.returncode == 2 and "nope.jsonl" in absent.stderr


def test_submit_wait_fails_when_every_line_failed(url: str, tmp_path: Path) -> None:
    # a batch whose lines all failed is no success, even though its status is `completed` (issue 23)
    lines = tmp_path / "unknown.jsonl"
    lines.write_text("".join(json.dumps({"custom_id": f"u{i}", "method": "POST", "url": "/v1/chat/completions",
                                         "body": {"model": "no-such-model",
                                                  "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
                             for i in range(2)))
    done = _tokenomy("batch", "submit", str(lines), "--wait", "--poll", "0.1", "--url", url)
    assert done.returncode == 1, done.stderr
    batch_id = done.stdout.split()[0]
    assert f"{batch_id}  completed  0 done, 2 failed of 2" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: every line of batch {batch_id} failed (2 of 2); `tokenomy batch results {batch_id} --errors` shows "
        "why")


def test_batch_list_keeps_ids_whole_in_80_columns(url: str, tmp_path: Path) -> None:
    from tests.cli.terminal import in_terminal

    made = _tokenomy("batch", "submit", str(_input(tmp_path / "in.jsonl", 1)), "--url", url, "--json")
    batch_id = json.loads(made.stdout)["id"]
    code, shown, _ = in_terminal("batch", "list", "--url", url, env={"HOME": str(tmp_path)})
    assert code == 0 and max(len(line) for line in shown.splitlines()) <= 80
    assert batch_id in shown.split()  # whole, not cut
    row = next(line for line in shown.splitlines() if batch_id in line)
    assert "created (UTC)" in shown and re.search(r" 20\d\d-\d\d-\d\d \d\d:\d\d$", row.rstrip())  # not epoch s
