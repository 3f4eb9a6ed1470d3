"""What replicas must agree on without talking to each other: sticky prefix routing (rendezvous hashing of the
prompt prefix, no per-process seed) picks the same self-hosted replica on every gateway process; and semantic-cache
entries made on one gateway are served on another through Redis (``cache.semantic.store: redis``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
from tests.control.parts import REDIS_URL, redis_prefix
from tests.scale.parts import record

from servers import free_port, run_fault_upstream, run_gateway
from tokenomy.cache.semantic.verifier import Calibration, load_calibration
from tokenomy.config.settings import (
    CacheConfig,
    ControlConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LocalConfig,
    SemanticCacheConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream

__all__ = ["redis_prefix"]

SYSTEM = "You are the support bot for ACME. Policies: refunds within 30 days; shipping is free above $50."


@contextlib.contextmanager
def _serve(config: Path, home: Path, seed: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TOKENOMY_HOME": str(home), "PYTHONHASHSEED": seed}
    proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(20)


def test_sticky_prefix_routing_is_the_same_on_every_replica(fault: tuple[str, FaultUpstream], tmp_path: Path) -> None:
    base, _ = fault
    config = tmp_path / "c.yaml"
    config.write_text("local: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\n"
                      "server: {log_level: warning}\ncache: {exact: {mode: 'off'}}\ndeployments:\n" + "".join(
                          f"  - {{name: vllm-{i}, provider: vllm, model: llama, base_url: '{base}'}}\n"
                          for i in range(5)))
    picks: list[list[str]] = []
    for seed in ("1", "2", "3"):  # three processes, three different string-hash seeds
        with _serve(config, tmp_path / f"h{seed}", seed) as url:
            client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
            picks.append([client.chat.completions.with_raw_response.create(
                model="llama", messages=[{"role": "system", "content": f"{SYSTEM} tenant {t}"},
                                         {"role": "user", "content": f"question {t}"}]).headers["x-tokenomy-deployment"]
                          for t in range(20)])
    assert picks[0] == picks[1] == picks[2]
    assert len(set(picks[0])) >= 3  # twenty prefixes spread over the five replicas


def test_a_semantic_entry_made_on_one_replica_is_served_on_another(tmp_path: Path, redis_prefix: str) -> None:
    calibration = tmp_path / "calibration.json"  # the shipped verifier, serving from score 0.8
    calibration.write_bytes(Calibration(load_calibration().verifier, ((0.001, 0.8),), "test").to_json())

    def settings(name: str, base: str) -> Settings:
        return Settings(local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path / name),
                        redis_url=REDIS_URL, control=ControlConfig(redis_prefix=redis_prefix),
                        cache=CacheConfig(exact=ExactCacheConfig(store="redis"),
                                          semantic=SemanticCacheConfig(enabled=True, calibration=str(calibration),
                                                                       store="redis", policy="calibrated")),
                        deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo",
                                                      base_url=base)])

    def ask(url: str, text: str) -> tuple[str, str]:
        raw = openai.OpenAI(base_url=url, api_key="unused", max_retries=0).chat.completions.with_raw_response.create(
            model="echo", temperature=0, messages=[{"role": "system", "content": "Answer briefly."},
                                                   {"role": "user", "content": text}])
        return raw.headers["x-tokenomy-cache"], raw.parse().choices[0].message.content or ""

    with run_fault_upstream() as (base, upstream), run_gateway(settings("a", base)) as a, \
            run_gateway(settings("b", base)) as b:
        assert ask(a, "What is the capital of France?") == ("miss", "echo: What is the capital of France?")
        began = time.monotonic()
        while True:  # B follows the stream (XREAD, blocking): the entry arrives within milliseconds
            status, answer = ask(b, "what's the capital city of France?")
            if status == "semantic-hit" or time.monotonic() - began > 5:
                break
            time.sleep(0.05)
        record("semantic_across_replicas", seconds_to_hit=round(time.monotonic() - began, 3))
        assert (status, answer) == ("semantic-hit", "echo: What is the capital of France?")
        assert upstream.calls["echo"] == 1
        with run_gateway(settings("c", base)) as c:  # a replica that starts later loads the entries on start
            assert ask(c, "What's the capital of France?")[0] == "semantic-hit"
        assert upstream.calls["echo"] == 1
