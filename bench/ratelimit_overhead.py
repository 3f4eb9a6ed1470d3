"""What team control costs per request, measured in one run against its own baseline.

1. The rate-limit step alone (``RateLimiter.admit`` for a key with an RPM and a TPM limit: two sliding-window hits
   plus the two window reads behind the ``x-ratelimit-*`` headers), on the ``limits`` library's in-memory storage
   and on Redis, against an empty await (no limiter).
2. End to end: sequential chat completions through a running gateway (uvicorn in-process, the zero-delay fault
   upstream, one keep-alive connection), blocks of requests alternating between keys: one with no limits, one
   with RPM+TPM limits, one with a budget (reserve + settle), on a gateway without Redis (embedded: memory limits,
   SQLite budgets) and one with Redis. Reports median and mean latency per key and the difference to the
   no-limit key of the same gateway.

    PYTHONPATH=src .venv/bin/python bench/ratelimit_overhead.py [--requests 1500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import run_fault_upstream, run_gateway  # noqa: E402
from tokenomy.config.settings import (  # noqa: E402
    CacheConfig,
    ControlConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LocalConfig,
    PriceOverride,
    Settings,
)
from tokenomy.control.ratelimit import Limit, RateLimiter  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"
MASTER = "bench-master-" + uuid.uuid4().hex


async def _micro(calls: int, redis_url: str | None, prefix: str) -> dict[str, float]:
    limiter = RateLimiter(redis_url, prefix)
    limits = [Limit("key:bench", "requests", 10**9), Limit("key:bench", "tokens", 10**9)]

    async def nothing() -> None:
        return None

    for _ in range(200):  # warm up (connections, scripts loaded)
        await limiter.admit(limits, 50)
    times: dict[str, list[float]] = {"baseline": [], "admit": [], "hit": []}
    for _ in range(calls):
        t0 = time.perf_counter()
        await nothing()
        t1 = time.perf_counter()
        await limiter.admit(limits, 50)
        t2 = time.perf_counter()
        await limiter.hit(limits[0], 1)
        t3 = time.perf_counter()
        times["baseline"].append(t1 - t0)
        times["admit"].append(t2 - t1)
        times["hit"].append(t3 - t2)
    await limiter.aclose()
    return {f"{k}_us_p50": round(statistics.median(v) * 1e6, 1) for k, v in times.items()}


def _settings(base: str, home: Path, redis_prefix: str | None) -> Settings:
    dep = DeploymentConfig(name="echo", provider="openai_compatible", model="echo", upstream_model="echo",
                           base_url=base, price=PriceOverride(input_usd_per_mtok=Decimal(1),
                                                              output_usd_per_mtok=Decimal(2)))
    return Settings(deployments=[dep], local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    control=ControlConfig(master_key=MASTER, **({"redis_prefix": redis_prefix} if redis_prefix
                                                                 else {})),
                    redis_url=REDIS if redis_prefix else None, cache=CacheConfig(exact=ExactCacheConfig(mode="off")))


def _end_to_end(url: str, requests: int) -> dict[str, Any]:
    root = url.removesuffix("/v1")
    keys: dict[str, str] = {}
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {MASTER}"}) as admin:
        for name, fields in (("no limits", {}), ("rpm+tpm", {"rpm": 10**9, "tpm": 10**9}),
                             ("budget", {"budget_usd": "1000000"})):
            keys[name] = admin.post(f"{root}/admin/keys", json={"name": name, **fields}).json()["key"]
    body = {"model": "echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]}
    samples: dict[str, list[float]] = {name: [] for name in keys}
    with httpx.Client(timeout=30) as client:
        for key in keys.values():  # warm up
            for _ in range(100):
                client.post(f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
        block = 50
        for _ in range(max(1, requests // block)):
            for name, key in keys.items():
                headers = {"authorization": f"Bearer {key}"}
                for _ in range(block):
                    t0 = time.perf_counter()
                    response = client.post(f"{url}/chat/completions", json=body, headers=headers)
                    samples[name].append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
    base = statistics.median(samples["no limits"])
    return {name: {"requests": len(v), "p50_ms": round(statistics.median(v) * 1e3, 3),
                   "mean_ms": round(statistics.fmean(v) * 1e3, 3),
                   "p50_added_ms": round((statistics.median(v) - base) * 1e3, 3),
                   "p50_ratio": round(statistics.median(v) / base, 3)} for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per key and gateway")
    parser.add_argument("--calls", type=int, default=5000, help="micro-benchmark calls")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    prefix = f"tokenomy-bench-{uuid.uuid4().hex[:8]}:"
    report: dict[str, Any] = {"micro": {"memory": asyncio.run(_micro(args.calls, None, prefix)),
                                        "redis": asyncio.run(_micro(args.calls, REDIS, prefix))}}
    import tempfile

    with run_fault_upstream() as (base, _), tempfile.TemporaryDirectory() as tmp:
        for label, redis_prefix in (("embedded", None), ("redis", prefix)):
            with run_gateway(_settings(base, Path(tmp) / label, redis_prefix)) as url:
                report[f"gateway_{label}"] = _end_to_end(url, args.requests)
    _cleanup(prefix)
    if args.json:
        print(json.dumps(report))
        return
    print(json.dumps(report, indent=2))


def _cleanup(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    main()
