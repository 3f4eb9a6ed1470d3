"""Upstream-client micro-benchmark for bench/overhead.py: the same POST to the zero-delay upstream through each HTTP
client this interpreter can import (aiohttp, httpx, httpx2), used the way a gateway uses one: a single pooled
client, the JSON body pre-encoded, the whole response read.

    python bench/clients.py --url http://127.0.0.1:PORT/v1/chat/completions [--requests N] [--concurrency C]

For each client: N requests one after another, then N spread over C concurrent workers. Prints JSON rows with wall
microseconds per request and this process's CPU microseconds per request (the number that decides how many requests
a gateway's single core can relay; the wall figure also contains the upstream's own time).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

BODY = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "benchmark ping with a few words"}]})
HEADERS = {"content-type": "application/json"}
Post = Callable[[], Awaitable[bytes]]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _timed(post: Post, requests: int, concurrency: int) -> dict[str, float]:
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            if b"echo: " not in await post():
                raise RuntimeError("the upstream answered without the echo")

    for _ in range(min(200, per_worker)):  # warm the pool and the code paths
        await post()
    t0, cpu0 = time.perf_counter(), _cpu_s()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = per_worker * concurrency
    return {"requests": done, "wall_us_per_request": (time.perf_counter() - t0) / done * 1e6,
            "cpu_us_per_request": (_cpu_s() - cpu0) / done * 1e6}


async def bench_aiohttp(url: str, requests: int, concurrency: int) -> list[dict[str, Any]]:
    import aiohttp

    body = BODY.encode()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post() -> bytes:
            async with session.post(url, data=body, headers=HEADERS) as resp:
                resp.raise_for_status()
                return await resp.read()

        return await _rows("aiohttp", aiohttp.__version__, post, requests, concurrency)


async def bench_httpx_like(module_name: str, url: str, requests: int, concurrency: int) -> list[dict[str, Any]]:
    """httpx and its successor httpx2 share one API."""
    module: Any = importlib.import_module(module_name)
    body = BODY.encode()
    limits = module.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with module.AsyncClient(limits=limits, timeout=30) as client:

        async def post() -> bytes:
            resp = await client.post(url, content=body, headers=HEADERS)
            resp.raise_for_status()
            return bytes(resp.content)

        return await _rows(module_name, module.__version__, post, requests, concurrency)


async def _rows(name: str, version: str, post: Post, requests: int, concurrency: int) -> list[dict[str, Any]]:
    rows = []
    for workers in (1, concurrency):
        rows.append({"client": name, "version": version, "concurrency": workers,
                     **await _timed(post, requests, workers)})
    return rows


async def run_all(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    if importlib.util.find_spec("aiohttp"):
        rows += await bench_aiohttp(url, requests, concurrency)
    else:
        missing.append("aiohttp")
    for name in ("httpx", "httpx2"):
        if importlib.util.find_spec(name):
            rows += await bench_httpx_like(name, url, requests, concurrency)
        else:
            missing.append(name)
    return {"rows": rows, "not_importable": missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("only loopback targets (http://127.0.0.1:PORT/...) are allowed")
    import uvloop

    print(json.dumps(uvloop.run(run_all(args.url, args.requests, args.concurrency))))


if __name__ == "__main__":
    main()
