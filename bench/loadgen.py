"""The load generator bench/overhead.py runs as its own process (pinned apart from the target under test).

    python bench/loadgen.py --url URL (--rate R | --concurrency C) [--seconds S] [--stream] [--bearer KEY]
                            [--door chat|messages|responses|responses-nostore]

It speaks HTTP/1.1 itself over keep-alive connections (uvloop + httptools' C parser, one request per connection at a
time, the request bytes built once), because a general-purpose client costs several times more CPU per request and
shares a core with the upstream here: ``--client aiohttp`` runs the same closed loop through aiohttp, so the two can
be compared (bench/stack_choices.py does, in every run).

Open loop (``--rate R``): request i is released at t0 + i/R whether or not earlier ones finished. Its latency runs
from its release to the last byte of the response (for a stream: the chunked terminator after ``data: [DONE]``), so
waiting for a free connection behind a slow target counts (no coordinated omission). How late the generator released
each request against its schedule is reported too (``release_lag``): if that grows, the generator, not the target, is
the bottleneck. Closed loop (``--concurrency C``): C workers send back to back until the time is up.

Prints one JSON object: counts, errors by kind, latencies in microseconds, and the generator's own CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

BODY_TEXT = "benchmark ping with a few words"
TICK_S = 0.001


class ResponseError(Exception):
    """The target answered, but not with a complete 200 carrying the expected body."""


@dataclass
class Target:
    host: str
    port: int
    payload: bytes
    marker: bytes

    @classmethod
    def build(cls, url: str, *, stream: bool, bearer: str, door: str = "chat") -> Target:
        parts = urlsplit(url)
        if parts.hostname != "127.0.0.1" or parts.port is None:
            raise SystemExit(f"loadgen: only http://127.0.0.1:PORT/... targets are allowed, not {url!r}")
        body, done = _door_body(door, stream)
        auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
        head = (f"POST {parts.path} HTTP/1.1\r\nHost: 127.0.0.1:{parts.port}\r\nContent-Type: application/json\r\n"
                f"Accept: */*\r\n{auth}Content-Length: {len(body)}\r\n\r\n")
        return cls(parts.hostname, parts.port, head.encode() + body, done if stream else b'"echo: ')


def _door_body(door: str, stream: bool) -> tuple[bytes, bytes]:
    """The request body each door (API) takes for the same question, and the bytes that end its stream."""
    messages = [{"role": "user", "content": BODY_TEXT}]
    if door == "messages":  # Anthropic's Messages API
        return json.dumps({"model": "echo", "max_tokens": 64, "stream": stream, "messages": messages}).encode(), \
            b"event: message_stop"
    if door in ("responses", "responses-nostore"):  # OpenAI's Responses API (store is its default)
        store = {"store": False} if door == "responses-nostore" else {}
        return json.dumps({"model": "echo", "input": BODY_TEXT, "stream": stream, **store}).encode(), \
            b"event: response.completed"
    return json.dumps({"model": "echo", "stream": stream, "messages": messages}).encode(), b"[DONE]"


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; ``send`` returns a future set at the last byte."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._body = bytearray()
        self._marker = b""
        self.alive = True
        self.status = 0
        self.first_body_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self._finish(ConnectionResetError("connection closed by the target"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._abort(ResponseError(f"bad HTTP from the target: {exc}"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.first_body_at:
            self.first_body_at = time.perf_counter()
        if len(self._body) < 65536:
            self._body += body

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.alive = False
            if self._transport is not None:
                self._transport.close()
        if self.status != 200:
            self._finish(ResponseError(f"status_{self.status}"))
        elif self._marker not in self._body:
            self._finish(ResponseError("incomplete_body"))
        else:
            self._finish(None)

    def send(self, payload: bytes, marker: bytes, timeout_s: float) -> asyncio.Future[None]:
        assert self._transport is not None and self._waiter is None
        self.status, self.first_body_at, self._marker = 0, 0.0, marker
        self._body.clear()
        self._waiter = self._loop.create_future()
        self._timer = self._loop.call_later(timeout_s, self._abort, TimeoutError("timeout"))
        self._transport.write(payload)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _abort(self, exc: Exception) -> None:
        self.alive = False
        self._finish(exc)
        self.close()

    def _finish(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


class Pool:
    """Keep-alive connections to one target, at most ``limit`` open; callers beyond that wait in FIFO order."""

    def __init__(self, target: Target, limit: int) -> None:
        self._target = target
        self._limit = limit
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self.open = 0
        self.peak_open = 0

    async def acquire(self) -> Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if conn.alive:
                    return conn
                self.open -= 1
            if self.open < self._limit:
                return await self._connect()
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            conn_or_none = await waiter
            if conn_or_none is not None:
                return conn_or_none

    def release(self, conn: Connection) -> None:
        if not conn.alive:
            self.open -= 1
            conn.close()
            if self._waiters:
                self._waiters.popleft().set_result(None)  # a slot is free: the waiter opens a connection
        elif self._waiters:
            self._waiters.popleft().set_result(conn)
        else:
            self._idle.append(conn)

    async def prewarm(self, count: int) -> None:
        conns = [await self._connect() for _ in range(min(count, self._limit))]
        for conn in conns:
            self.release(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()

    async def _connect(self) -> Connection:
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(loop), self._target.host, self._target.port)
        except OSError:
            self.open -= 1
            raise
        return conn


@dataclass
class Record:
    latency_us: list[int] = field(default_factory=list)
    ttfb_us: list[int] = field(default_factory=list)
    release_lag_us: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


async def one_request(pool: Pool, target: Target, record: Record, start: float, timeout_s: float) -> None:
    """One request whose clock started at ``start``; the outcome lands in ``record``."""
    try:
        conn = await pool.acquire()
    except OSError:
        record.errors["connect"] += 1
        return
    remaining = start + timeout_s - time.perf_counter()
    if remaining <= 0:
        pool.release(conn)
        record.errors["timeout"] += 1
        return
    try:
        await conn.send(target.payload, target.marker, remaining)
        end, first_body_at = time.perf_counter(), conn.first_body_at
    except (ResponseError, ConnectionError, TimeoutError) as exc:
        record.errors[str(exc) or type(exc).__name__] += 1
        return
    finally:
        pool.release(conn)
    record.latency_us.append(int((end - start) * 1e6))
    if first_body_at:
        record.ttfb_us.append(int((first_body_at - start) * 1e6))


async def open_loop(target: Target, rate: float, seconds: float, timeout_s: float, max_conns: int) -> dict[str, Any]:
    pool, record = Pool(target, max_conns), Record()
    await pool.prewarm(min(max_conns, max(8, int(rate / 50))))
    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.005
    meter = Meter()
    i = 0
    while i < total:
        now = time.perf_counter()
        while i < total and t0 + i / rate <= now:
            record.release_lag_us.append(int((now - (t0 + i / rate)) * 1e6))
            task = asyncio.create_task(one_request(pool, target, record, now, timeout_s))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < total:  # libuv timers tick in whole milliseconds: a shorter sleep would spin
            await asyncio.sleep(max(TICK_S, t0 + i / rate - time.perf_counter()))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s + 5)
    elapsed = time.perf_counter() - t0
    pool.close()
    return {"loop": "open", "offered_rps": rate, "sent": total, **_summary(record, elapsed, meter),
            "peak_connections": pool.peak_open, "unfinished": len(tasks)}


async def closed_loop(target: Target, concurrency: int, seconds: float, timeout_s: float) -> dict[str, Any]:
    pool, record = Pool(target, concurrency), Record()
    await pool.prewarm(concurrency)

    async def worker(stop: float) -> None:
        while time.perf_counter() < stop:
            await one_request(pool, target, record, time.perf_counter(), timeout_s)

    t0, meter = time.perf_counter(), Meter()
    await asyncio.gather(*(worker(t0 + seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    pool.close()
    return {"loop": "closed", "concurrency": concurrency, **_summary(record, elapsed, meter)}


async def closed_loop_aiohttp(url: str, target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    """The same closed loop through aiohttp, only to compare the generators' CPU cost per request."""
    import aiohttp

    body = target.payload.split(b"\r\n\r\n", 1)[1]
    headers = {"content-type": "application/json"}
    record = Record()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(stop: float) -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        data = await resp.read()
                except aiohttp.ClientError as exc:
                    record.errors[type(exc).__name__] += 1
                    continue
                if resp.status == 200 and target.marker in data:
                    record.latency_us.append(int((time.perf_counter() - start) * 1e6))
                else:
                    record.errors[f"status_{resp.status}"] += 1

        t0, meter = time.perf_counter(), Meter()
        await asyncio.gather(*(worker(t0 + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"loop": "closed", "concurrency": concurrency, **_summary(record, elapsed, meter)}


class Meter:
    """This process's CPU seconds over the measured window."""

    def __init__(self) -> None:
        self._start = self._own_s()

    def read(self) -> dict[str, float]:
        return {"loadgen_cpu_s": self._own_s() - self._start}

    @staticmethod
    def _own_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime


def _summary(record: Record, elapsed_s: float, meter: Meter) -> dict[str, Any]:
    ok = len(record.latency_us)
    done = ok + sum(record.errors.values())
    usage = meter.read()
    return {"ok": ok, "errors": dict(record.errors), "elapsed_s": elapsed_s, "achieved_rps": ok / elapsed_s, **usage,
            "loadgen_cpu_us_per_request": usage["loadgen_cpu_s"] / done * 1e6 if done else None,
            "latency_us": record.latency_us, "ttfb_us": record.ttfb_us, "release_lag_us": record.release_lag_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, help="open loop: requests released per second")
    load.add_argument("--concurrency", type=int, help="closed loop: requests in flight")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request limit, seconds")
    parser.add_argument("--max-connections", type=int, default=512, help="open loop: connection cap")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--bearer", default="")
    parser.add_argument("--door", choices=("chat", "messages", "responses", "responses-nostore"), default="chat",
                        help="the API the body is in (the URL must be that door's)")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="aiohttp: closed loop only")
    args = parser.parse_args()
    target = Target.build(args.url, stream=args.stream, bearer=args.bearer, door=args.door)
    import uvloop

    if args.client == "aiohttp":
        if args.concurrency is None:
            parser.error("--client aiohttp runs the closed loop only")
        result = uvloop.run(closed_loop_aiohttp(args.url, target, args.concurrency, args.seconds))
    elif args.rate is not None:
        result = uvloop.run(open_loop(target, args.rate, args.seconds, args.timeout, args.max_connections))
    else:
        result = uvloop.run(closed_loop(target, args.concurrency, args.seconds, args.timeout))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
