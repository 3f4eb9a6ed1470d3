"""What the soak runs against, all of it its own and all on loopback: a throwaway PostgreSQL cluster and redis-server
(tests/scale/parts.py's: stopped and started under load; the machine's shared servers are never touched), the fault
upstream in its own process, and ``tokenomy serve`` with the soak's config. Everything is stopped at the end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.scale.parts import PostgresCluster, RedisServer  # noqa: E402 - after the path above

from servers import free_port  # noqa: E402

MASTER = "sk-soak-master"
FILE_LIMIT = 2 * 1024 * 1024  # batch.max_file_bytes here, so an over-limit upload is cheap to send

CONFIG = """\
env_providers: false
local: {{enabled: false}}
embeddings: {{enabled: false}}
server: {{log_level: warning, header_timeout_s: 5, body_idle_timeout_s: 5}}
retry: {{max_retries: 2, base_delay_ms: 20, max_delay_ms: 200, cooldown_s: 2, stream_idle_timeout_s: 2}}
batch: {{max_file_bytes: {file_limit}, max_concurrency: 4}}
cache: {{exact: {{mode: deterministic}}}}
fallbacks: {{chaos: [echo], resets: [echo]}}
deployments:
  - {{name: echo, provider: openai_compatible, model: echo, tier: small, base_url: '{base}', upstream_model: echo,
      price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
  - {{name: chaos, provider: openai_compatible, model: chaos, tier: medium, base_url: '{base}',
      upstream_model: chaos-3-2-soak, price: {{input_usd_per_mtok: 2, output_usd_per_mtok: 4}}}}
  - {{name: resets, provider: openai_compatible, model: resets, tier: medium, base_url: '{base}',
      upstream_model: reset, max_retries: 0, price: {{input_usd_per_mtok: 2, output_usd_per_mtok: 4}}}}
  - {{name: slow, provider: openai_compatible, model: slow, tier: small, base_url: '{base}',
      upstream_model: sleep-1500, price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
  - {{name: trickle, provider: openai_compatible, model: trickle, tier: small, base_url: '{base}',
      upstream_model: slow-stream, price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
  - {{name: stall, provider: openai_compatible, model: stall, tier: small, base_url: '{base}',
      upstream_model: stall-stream, max_retries: 0, price: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}
  - {{name: emb, provider: openai_compatible, kind: embeddings, model: text-embedding-3-small, base_url: '{base}',
      upstream_model: text-embedding-3-small, batching: {{max_batch: 16, max_wait_ms: 2}},
      price: {{input_usd_per_mtok: 0.02, output_usd_per_mtok: 0}}}}
"""


@dataclass
class Stack:
    gateway: str  # http://127.0.0.1:PORT
    upstream: str
    pg: PostgresCluster
    redis: RedisServer
    home: Path
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        """The gateway process's resident memory (VmRSS), in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def upstream_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.upstream + "/_stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stop_gateway(self) -> None:
        """SIGTERM, as an operator stops it: the ledger writer flushes before it exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{url}: the process exited ({proc.returncode})") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer in {seconds:g} s") from None
            time.sleep(0.2)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="tokenomy-soak-"))
    pg, redis = PostgresCluster(), RedisServer()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        redis.start()
        up_port, gw_port = free_port(), free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "tokenomy.testing.fault_upstream", "--port",
                                       str(up_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        upstream = f"http://127.0.0.1:{up_port}"
        _wait_http(upstream + "/_stats", 30, procs[-1])
        config = home / "soak.yaml"
        config.write_text(CONFIG.format(base=upstream + "/v1", file_limit=FILE_LIMIT))
        env = {**os.environ, "TOKENOMY_HOME": str(home / "data"), "TOKENOMY_DATABASE_URL": pg.url,
               "TOKENOMY_REDIS_URL": redis.url, "TOKENOMY_MASTER_KEY": MASTER}
        log = (home / "gateway.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config),
                                       "--port", str(gw_port)], env=env, stdout=log, stderr=subprocess.STDOUT))
        gateway = f"http://127.0.0.1:{gw_port}"
        _wait_http(gateway + "/healthz", 90, procs[-1])
        yield Stack(gateway=gateway, upstream=upstream, pg=pg, redis=redis, home=home, proc=procs[-1])
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        redis.stop()
        pg.remove()
