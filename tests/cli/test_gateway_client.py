"""One way to reach a running gateway from every command that talks to one (issue 23): the same ``--url`` (its
base or its /v1 URL) and TOKENOMY_URL, the same ``--api-key`` and TOKENOMY_API_KEY on ``keys``, ``batch`` and
``spend``, and refusals that name the flag to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests.control.parts import MASTER, priced

from servers import run_gateway
from tokenomy.config.settings import ControlConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="module")
def url(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base, _ = fault
    settings = Settings(deployments=[priced("echo", base, "echo")], local=LocalConfig(enabled=False),
                        control=ControlConfig(master_key=MASTER, key_refresh_s=0.2),
                        home=str(tmp_path_factory.mktemp("client-home")))
    with run_gateway(settings) as found:
        yield found


def _tokenomy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TOKENOMY_URL", "TOKENOMY_API_KEY", "TOKENOMY_MASTER_KEY")}
    return subprocess.run([sys.executable, "-m", "tokenomy", *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **env}, check=False)


def _error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    return line


def test_keys_take_the_same_url_and_key_as_batch(url: str, tmp_path: Path) -> None:
    base = url.removesuffix("/v1")
    # --url as the base URL and --api-key ...
    made = _tokenomy("keys", "create", "--name", "ci", "--json", "--url", base, "--api-key", MASTER)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    # ... or the /v1 URL and the key from the environment
    listed = _tokenomy("keys", "list", "--json", TOKENOMY_URL=url, TOKENOMY_API_KEY=MASTER)
    assert listed.returncode == 0, listed.stderr
    assert "ci" in {k["name"] for k in json.loads(listed.stdout)["data"]}
    # no key: the message names the flag and the variables
    line = _error(_tokenomy("keys", "list", "--url", url))
    assert "--api-key" in line and "TOKENOMY_API_KEY" in line
    # a virtual key is not the master key: the admin API refuses it, and says what it needs
    line = _error(_tokenomy("keys", "list", "--url", url, "--api-key", key))
    assert "HTTP 401" in line and "needs the gateway's master key (--api-key or TOKENOMY_API_KEY)" in line


def test_spend_through_the_gateway(url: str) -> None:
    made = _tokenomy("keys", "create", "--name", "spender", "--json", TOKENOMY_URL=url, TOKENOMY_API_KEY=MASTER)
    key = json.loads(made.stdout)["key"]
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    own = _tokenomy("spend", "--json", "--url", url, "--api-key", key)
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["requests"] == 2  # a virtual key sees its own requests
    everyone = _tokenomy("spend", "--json", "--by", "key", TOKENOMY_URL=url, TOKENOMY_API_KEY=MASTER)
    assert json.loads(everyone.stdout)["requests"] >= 2
    line = _error(_tokenomy("spend", "--url", url))
    assert "HTTP 401" in line and "pass --api-key or set TOKENOMY_API_KEY" in line


def test_batch_refusal_names_the_flag(url: str) -> None:
    line = _error(_tokenomy("batch", "list", "--url", url.removesuffix("/v1")))
    assert "HTTP 401" in line and "pass --api-key or set TOKENOMY_API_KEY" in line
    listed = _tokenomy("batch", "list", "--json", "--url", url, TOKENOMY_API_KEY=MASTER)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
