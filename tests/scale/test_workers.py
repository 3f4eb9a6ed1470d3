"""``tokenomy serve --workers N``: refused without the stores replicas share; with PostgreSQL and Redis, N processes
on one port serve, and every answered request is one ledger row. /readyz on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import orjson
import psycopg
from tests.control.parts import REDIS_URL, redis_available, redis_prefix
from tests.scale.parts import fresh_database

from servers import free_port, need, run_gateway
from tokenomy.config.settings import DeploymentConfig, LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream

__all__ = ["redis_prefix"]


def test_workers_need_postgres_and_redis(tmp_path: Path) -> None:
    env = {**os.environ, "TOKENOMY_HOME": str(tmp_path)}
    env.pop("TOKENOMY_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "tokenomy", "serve", "--workers", "2"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--workers 2 needs TOKENOMY_DATABASE_URL=postgresql://" in done.stderr
    assert "TOKENOMY_REDIS_URL" in done.stderr


def test_two_workers_on_one_port_serve_into_one_ledger(fault: tuple[str, FaultUpstream], tmp_path: Path,
                                                        redis_prefix: str) -> None:
    need(redis_available(), "Redis on 127.0.0.1:6379")
    base, _ = fault
    config = tmp_path / "c.yaml"
    config.write_text("local: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\n"
                      "server: {log_level: warning}\ncache: {exact: {mode: 'off'}}\ndeployments:\n"
                      f"  - {{name: echo, provider: openai_compatible, model: echo, base_url: '{base}'}}\n")
    with fresh_database() as database:
        port = free_port()
        env = {**os.environ, "TOKENOMY_HOME": str(tmp_path / "home"), "TOKENOMY_DATABASE_URL": database,
               "TOKENOMY_REDIS_URL": REDIS_URL, "TOKENOMY_REDIS_PREFIX": redis_prefix}
        proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config), "--port",
                                 str(port), "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                        ready = orjson.loads(resp.read())
                        break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            assert ready["status"] == "ready" and ready["checks"]["database"]["ok"] and ready["checks"]["redis"]["ok"]
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
            ids = {client.chat.completions.with_raw_response.create(
                model="echo", messages=[{"role": "user", "content": f"worker {i}"}]).headers["x-request-id"]
                   for i in range(40)}
        finally:
            proc.terminate()
            proc.wait(30)
        with psycopg.connect(database) as conn:
            stored = {rid for (rid,) in conn.execute("SELECT id FROM requests")}
            (workers,) = conn.execute("SELECT COUNT(*) FROM procrastinate_workers").fetchone() or (0,)
    assert ids <= stored and len(ids) == 40  # durable before each response: nothing waits in memory
    assert workers == 0  # both processes' batch workers registered and unregistered on the way out


def test_readyz_on_the_embedded_default(fault: tuple[str, FaultUpstream], tmp_path: Path) -> None:
    base, _ = fault
    settings = Settings(deployments=[DeploymentConfig(name="echo", provider="openai_compatible", model="echo",
                                                      base_url=base)],
                        local=LocalConfig(enabled=False), env_providers=False, home=str(tmp_path))
    with run_gateway(settings) as url, urllib.request.urlopen(url.removesuffix("/v1") + "/readyz") as resp:
        body = orjson.loads(resp.read())
    assert resp.status == 200 and body["status"] == "ready" and set(body["checks"]) == {"database", "ledger"}
    assert body["ledger"] == {"queued": 0, "written": 0, "spilled": 0, "replayed": 0, "store": "up",
                              "caught_up": True}
