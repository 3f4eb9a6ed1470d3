"""The soak's steady traffic, one request at a time: each kind sends one request as a client would (aiohttp, with a
virtual key) and says how it went. Kinds: plain and streamed chat, cached chat (a small pool of deterministic
prompts), embeddings, chat whose upstream fails (scripted 429s and 500s; resets) and falls back, a stream that stalls
upstream, batches, and clients that leave mid-answer (non-streamed and streamed)."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp


@dataclass
class Outcome:
    kind: str
    status: int  # HTTP status; 0: no response (the client left, or the connection failed)
    cause: str  # "ok", or why not: "http-503 upstream_unavailable", "client-left", "stream-error", ...
    latency_s: float
    request_id: str | None = None  # x-request-id of a response (a ledger row must hold it)
    at: float = 0.0


Send = Callable[[aiohttp.ClientSession, str, str, random.Random], Awaitable[Outcome]]


def _chat(model: str, text: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def _post(session: aiohttp.ClientSession, url: str, key: str, body: dict[str, object], kind: str) -> Outcome:
    began = time.monotonic()
    try:
        async with session.post(url, json=body, headers={"authorization": f"Bearer {key}"}) as resp:
            raw = await resp.read()
            cause = "ok" if resp.status == 200 else f"http-{resp.status} {_code(raw)}"
            return Outcome(kind, resp.status, cause, time.monotonic() - began, resp.headers.get("x-request-id"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(kind, 0, f"connection {type(exc).__name__}", time.monotonic() - began)


def _code(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def plain(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    return await _post(session, base + "/v1/chat/completions", key,
                       _chat("echo", f"plain {rng.random()}", temperature=0.7), "plain")


async def cached(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    return await _post(session, base + "/v1/chat/completions", key,
                       _chat("echo", f"cached question {rng.randrange(20)}", temperature=0), "cached")


async def upstream_faults(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    model = "chaos" if rng.random() < 0.7 else "resets"  # 429s and 500s / a reset connection; echo behind both
    return await _post(session, base + "/v1/chat/completions", key,
                       _chat(model, f"faults {rng.random()}", temperature=0.7), f"fallback-{model}")


async def embeddings(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    body = {"model": "text-embedding-3-small", "input": [f"text {rng.random()}" for _ in range(rng.randint(1, 4))]}
    return await _post(session, base + "/v1/embeddings", key, body, "embeddings")


async def _stream(session: aiohttp.ClientSession, base: str, key: str, body: dict[str, object], kind: str,
                  leave_after: int | None = None) -> Outcome:
    began = time.monotonic()
    try:
        async with session.post(base + "/v1/chat/completions", json={**body, "stream": True},
                                headers={"authorization": f"Bearer {key}"}) as resp:
            rid = resp.headers.get("x-request-id")
            if resp.status != 200:
                return Outcome(kind, resp.status, f"http-{resp.status} {_code(await resp.read())}",
                               time.monotonic() - began, rid)
            events = 0
            async for line in resp.content:
                if line.startswith(b"data: "):
                    events += 1
                    if b'"error"' in line:
                        return Outcome(kind, 200, "stream-error", time.monotonic() - began, rid)
                    if leave_after is not None and events >= leave_after:
                        resp.close()  # the client leaves mid-stream
                        return Outcome(kind, 200, "client-left", time.monotonic() - began, rid)
            return Outcome(kind, 200, "ok", time.monotonic() - began, rid)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(kind, 0, f"connection {type(exc).__name__}", time.monotonic() - began)


async def streamed(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    return await _stream(session, base, key, _chat("echo", f"stream {rng.random()} words to come back",
                                                   temperature=0.7), "stream")


async def stalled(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    return await _stream(session, base, key, _chat("stall", f"stall {rng.random()} a b c d"), "stall")


async def leaves_stream(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    return await _stream(session, base, key, _chat("trickle", f"trickle {rng.random()}"), "leave-stream",
                         leave_after=2)


async def leaves_whole(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    """A non-streamed request to a slow upstream (1.5 s) whose client gives up after 0.2 s."""
    began = time.monotonic()
    try:
        async with asyncio.timeout(0.2):
            await _post(session, base + "/v1/chat/completions", key, _chat("slow", f"slow {rng.random()}"), "x")
    except TimeoutError:
        return Outcome("leave-whole", 0, "client-left", time.monotonic() - began)
    return Outcome("leave-whole", 200, "answered before the client left", time.monotonic() - began)


async def batch(session: aiohttp.ClientSession, base: str, key: str, rng: random.Random) -> Outcome:
    """Upload a 10-line file and start a batch over it (its lines run in the background through the gateway)."""
    began = time.monotonic()
    tag = rng.random()
    lines = b"".join(json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/chat/completions",
                                 "body": _chat("echo", f"batch {tag} line {i}")}).encode() + b"\n" for i in range(10))
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", io.BytesIO(lines), filename="soak.jsonl", content_type="application/jsonl")
    headers = {"authorization": f"Bearer {key}"}
    try:
        async with session.post(base + "/v1/files", data=form, headers=headers) as resp:
            if resp.status != 200:
                return Outcome("batch", resp.status, f"http-{resp.status} {_code(await resp.read())}",
                               time.monotonic() - began)
            file_id = (await resp.json())["id"]
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        async with session.post(base + "/v1/batches", json=body, headers=headers) as resp:
            cause = "ok" if resp.status == 200 else f"http-{resp.status} {_code(await resp.read())}"
            return Outcome("batch", resp.status, cause, time.monotonic() - began)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome("batch", 0, f"connection {type(exc).__name__}", time.monotonic() - began)


# (kind, share of the steady traffic): about 4 % of requests are clients that leave mid-answer
MIX: list[tuple[Send, float]] = [(plain, 0.40), (streamed, 0.15), (cached, 0.15), (embeddings, 0.12),
                                 (upstream_faults, 0.08), (stalled, 0.01), (leaves_stream, 0.02),
                                 (leaves_whole, 0.02), (batch, 0.005)]


def pick(rng: random.Random) -> Send:
    roll, total = rng.random() * sum(w for _, w in MIX), 0.0
    for send, weight in MIX:
        total += weight
        if roll < total:
            return send
    return MIX[0][0]
