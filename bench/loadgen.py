"""Load generator for bench/overhead.py, run as its own process so it does not share the target's event loop.

Open loop (``--rate R``): request i is due at t0 + i/R and its latency is measured from that due time, so a target
that falls behind is charged for the queueing it causes (no coordinated omission). Closed loop (``--concurrency C``):
C workers send back to back; the completion rate is the target's throughput. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


def _body(stream: bool) -> bytes:
    return json.dumps({"model": "echo", "stream": stream,
                       "messages": [{"role": "user", "content": "benchmark ping with a few words"}]}).encode()


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, headers: dict[str, str]) -> float:
    """Seconds to first byte of the body (TTFB), or raises on a bad status."""
    async with session.post(url, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        first = time.perf_counter()
        if stream:
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    break
        else:
            await resp.read()
        return first


async def open_loop(url: str, rate: float, seconds: float, stream: bool, headers: dict[str, str]) -> dict[str, object]:
    body = _body(stream)
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors = 0
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=1024, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        t0 = time.perf_counter() + 0.05

        async def fire(i: int) -> None:
            nonlocal errors
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                first = await _one(session, url, body, stream, headers)
            except (aiohttp.ClientError, RuntimeError, TimeoutError):
                errors += 1
                return
            end = time.perf_counter()
            latencies.append(end - due)
            ttfbs.append(first - due)

        tasks = [asyncio.create_task(fire(i)) for i in range(total)]
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {"mode": "open", "offered_rps": rate, "sent": total, "ok": len(latencies), "errors": errors,
            "achieved_rps": len(latencies) / elapsed, **percentiles("latency", latencies),
            **percentiles("ttfb", ttfbs)}


def percentiles(name: str, values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {f"{name}_p50_ms": ordered[len(ordered) // 2] * 1000,
            f"{name}_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000}


async def closed_loop(url: str, concurrency: int, seconds: float, stream: bool,
                      headers: dict[str, str]) -> dict[str, object]:
    body = _body(stream)
    done = errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < stop:
                try:
                    await _one(session, url, body, stream, headers)
                    done += 1
                except (aiohttp.ClientError, RuntimeError, TimeoutError):
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"mode": "closed", "concurrency": concurrency, "ok": done, "errors": errors, "rps": done / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--bearer", default="")
    args = parser.parse_args()
    headers = {"content-type": "application/json"}
    if args.bearer:
        headers["authorization"] = f"Bearer {args.bearer}"
    import uvloop

    if args.rate:
        result = uvloop.run(open_loop(args.url, args.rate, args.seconds, args.stream, headers))
    else:
        result = uvloop.run(closed_loop(args.url, args.concurrency or 64, args.seconds, args.stream, headers))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
