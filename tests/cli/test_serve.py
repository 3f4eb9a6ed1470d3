"""`tokenomy serve` as a user runs it: the real server process (granian), answering, then flushing its ledger on
Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from servers import free_port
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.mark.parametrize("http_server", ["granian", "uvicorn"])
def test_serve_answers_and_flushes_ledger_on_interrupt(tmp_path: Path, http_server: str,
                                                       fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"local: {{enabled: false}}\nenv_providers: false\nserver: {{log_level: warning}}\n"
                   f"deployments:\n  - {{name: echo, provider: openai_compatible, model: echo, base_url: '{base}'}}\n")
    port = free_port()
    env = {**os.environ, "TOKENOMY_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(cfg), "--port", str(port),
                             "--server", http_server], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi there"}]}).encode()
        for _ in range(3):
            req = urllib.request.Request(f"{url}/v1/chat/completions", data=body,
                                         headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert json.loads(resp.read())["choices"][0]["message"]["content"] == "echo: hi there"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    report = subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--json"], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    assert json.loads(report.stdout)["requests"] == 3
