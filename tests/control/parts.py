"""Shared parts of the team-control tests: priced deployments on the fault upstream, gateways with a master key,
``tokenomy serve`` replicas sharing Redis, and a Redis key prefix per test that is cleaned up afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from servers import free_port, need
from tokenomy.config.settings import DeploymentConfig, PriceOverride

MASTER = "master-" + uuid.uuid4().hex
REDIS_URL = "redis://127.0.0.1:6379/0"


def priced(name: str, base: str, upstream: str, *, input_usd: str = "1", output_usd: str = "2", **extra: Any
           ) -> DeploymentConfig:
    """A deployment on the fault upstream with a flat price (USD per million tokens)."""
    return DeploymentConfig(name=name, provider="openai_compatible", model=extra.pop("model", name),
                            tier=extra.pop("tier", "medium"), upstream_model=upstream, base_url=base,
                            price=PriceOverride(input_usd_per_mtok=Decimal(input_usd),
                                                output_usd_per_mtok=Decimal(output_usd)), **extra)


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A prefix no other run uses; every key under it is deleted afterwards."""
    need(redis_available(), "Redis on 127.0.0.1:6379 for shared budgets and rate limits")
    import redis

    prefix = f"tokenomy-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def admin(base: str, method: str, path: str, body: dict[str, Any] | None = None, *, key: str = MASTER
          ) -> tuple[int, Any]:
    root = base.removesuffix("/v1")
    request = urllib.request.Request(root + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serve_config(path: Path, deployments: list[DeploymentConfig], extra: str = "") -> Path:
    rows = []
    for d in deployments:
        price = d.price
        assert price is not None
        rows.append(f"  - {{name: {d.name}, provider: openai_compatible, model: {d.model}, tier: {d.tier}, "
                    f"upstream_model: {d.upstream_model}, base_url: '{d.base_url}', "
                    f"price: {{input_usd_per_mtok: '{price.input_usd_per_mtok}', "
                    f"output_usd_per_mtok: '{price.output_usd_per_mtok}'}}}}")
    path.write_text("local: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\n"
                    "server: {log_level: warning}\ncache: {exact: {mode: 'off'}}\n"
                    "deployments:\n" + "\n".join(rows) + "\n" + extra)
    return path


@contextlib.contextmanager
def replicas(n: int, config: Path, home: Path, redis_prefix: str) -> Iterator[list[str]]:
    """``n`` ``tokenomy serve`` processes sharing one data dir (keys, ledger) and one Redis prefix."""
    env = {**os.environ, "TOKENOMY_HOME": str(home), "TOKENOMY_MASTER_KEY": MASTER, "TOKENOMY_REDIS_URL": REDIS_URL,
           "TOKENOMY_REDIS_PREFIX": redis_prefix}
    ports = [free_port() for _ in range(n)]
    procs = []
    for port in ports:
        procs.append(subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config),
                                       "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
        time.sleep(0.3)  # the first one migrates the shared ledger file
    try:
        for port, proc in zip(ports, procs, strict=True):
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "replica died") from None
                    assert time.monotonic() < deadline, "replica did not start"
                    time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
