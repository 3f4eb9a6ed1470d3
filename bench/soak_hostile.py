"""The soak's hostile 1 %: each sends one abusive request the way issue 20 found them (and a few more) and says
whether the gateway refused it as it should. The gateway here has a master key; its answers are what a keyed
deployment must give. Anything that holds a connection open (partial headers, a stalled body) checks the server cut
it within its deadline."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from soak_stack import FILE_LIMIT, MASTER


@dataclass
class Verdict:
    name: str
    as_expected: bool
    detail: str


async def _raw(base: str, data: bytes, *, hold_s: float = 0.0, read_s: float = 30.0) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection, keep it open; what came back and when the server closed it."""
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    began = loop.time()
    try:
        writer.write(data)
        await writer.drain()
        if hold_s:
            await asyncio.sleep(hold_s)
        got = await asyncio.wait_for(reader.read(65536), read_s)
        while chunk := await asyncio.wait_for(reader.read(65536), read_s):
            got += chunk
        return got, loop.time() - began
    except (TimeoutError, ConnectionError):
        return b"", loop.time() - began
    finally:
        writer.close()


def _request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = {"host": "127.0.0.1", "content-length": str(len(body)), "connection": "close", **(headers or {})}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


def _status(answer: bytes) -> int:
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def _chat(model: str = "echo", **extra: object) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}).encode()


async def _expect(name: str, base: str, data: bytes, statuses: tuple[int, ...]) -> Verdict:
    answer, _ = await _raw(base, data)
    status = _status(answer)
    return Verdict(name, status in statuses, f"HTTP {status}")


def _keyed(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": "application/json"}


async def huge_model_name(base: str, key: str) -> Verdict:
    body = _chat("m-" + uuid.uuid4().hex + "x" * 200_000)
    return await _expect("unknown 200 KB model name", base, _request("POST", "/v1/chat/completions", body,
                                                                      _keyed(key)), (404,))


async def no_key(base: str, key: str) -> Verdict:
    return await _expect("no key", base, _request("POST", "/v1/chat/completions", _chat(),
                                                  {"content-type": "application/json"}), (401,))


async def metrics_without_key(base: str, key: str) -> Verdict:
    return await _expect("/metrics without the master key", base,
                         _request("GET", "/metrics", headers={"authorization": f"Bearer {key}"}), (401,))


async def login_guess(base: str, key: str) -> Verdict:
    body = f"master_key=guess-{uuid.uuid4().hex}".encode()
    return await _expect("wrong /ui/login guess", base, _request(
        "POST", "/ui/login", body, {"content-type": "application/x-www-form-urlencoded"}), (401, 429))


async def foreign_feedback(base: str, key: str) -> Verdict:
    body = json.dumps({"request_id": "req_" + uuid.uuid4().hex[:24], "correct": False}).encode()
    return await _expect("feedback on another's request", base, _request("POST", "/v1/feedback", body, _keyed(key)),
                         (404,))


async def big_header(base: str, key: str) -> Verdict:
    return await _expect("1 MB header", base, _request("POST", "/v1/chat/completions", _chat(),
                                                       {**_keyed(key), "x-big": "a" * 1_000_000}), (431,))


async def oversized_body(base: str, key: str) -> Verdict:
    body = b'{"model": "echo", "messages": [{"role": "user", "content": "' + b"a" * (21 * 1024 * 1024) + b'"}]}'
    return await _expect("21 MB body", base, _request("POST", "/v1/chat/completions", body, _keyed(key)), (413, 0))


async def chunked_upload(base: str, key: str) -> Verdict:
    """A chunked upload (no Content-Length) well past the file limit: cut off with 413 near the limit."""
    boundary = "soakboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n").encode()
    piece = b'{"custom_id": "x"}\n' * 5000
    chunks = [head, *[piece] * (10 * FILE_LIMIT // len(piece))]
    body = b"".join(b"%x\r\n" % len(c) + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    data = (f"POST /v1/files HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {key}\r\nconnection: close\r\n"
            f"transfer-encoding: chunked\r\ncontent-type: multipart/form-data; boundary={boundary}\r\n\r\n"
            ).encode() + body
    answer, _ = await _raw(base, data)
    return Verdict("chunked upload 10x the limit", _status(answer) in (413, 0), f"HTTP {_status(answer)}")


async def json_bomb(base: str, key: str) -> Verdict:
    body = b'{"model": "echo", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    return await _expect("200,000 nested arrays", base, _request("POST", "/v1/chat/completions", body, _keyed(key)),
                         (400,))


async def user_bomb(base: str, key: str) -> Verdict:
    body = json.dumps({"model": "text-embedding-3-small", "input": ["x"], "user": "u" * 2_000_000}).encode()
    return await _expect("embeddings with a 2 MB user", base, _request("POST", "/v1/embeddings", body, _keyed(key)),
                         (200,))


async def partial_headers(base: str, key: str) -> Verdict:
    answer, took = await _raw(base, b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-ty", read_s=30)
    ok = took < 5 + 4  # server.header_timeout_s is 5 here
    return Verdict("partial headers held open", ok, f"closed after {took:.1f} s, HTTP {_status(answer)}")


async def stalled_body(base: str, key: str) -> Verdict:
    data = _request("POST", "/v1/chat/completions", b"", {**_keyed(key), "content-length": "5000"}) + b'{"model":'
    _, took = await _raw(base, data, read_s=30)
    return Verdict("body stalled mid-way", took < 5 + 4, f"closed after {took:.1f} s")


async def huge_max_tokens(base: str, key: str) -> Verdict:
    return await _expect("n=8, max_tokens=10**9", base, _request("POST", "/v1/chat/completions",
                                                                 _chat(n=8, max_tokens=10**9), _keyed(key)), (200,))


async def admin_with_virtual_key(base: str, key: str) -> Verdict:
    return await _expect("admin API with a virtual key", base, _request("GET", "/admin/keys", headers=_keyed(key)),
                         (401, 403))


HOSTILE: list[Callable[[str, str], Awaitable[Verdict]]] = [
    huge_model_name, no_key, metrics_without_key, login_guess, foreign_feedback, big_header, oversized_body,
    chunked_upload, json_bomb, user_bomb, partial_headers, stalled_body, huge_max_tokens, admin_with_virtual_key]


def pick(rng: random.Random) -> Callable[[str, str], Awaitable[Verdict]]:
    return rng.choice(HOSTILE)


__all__ = ["HOSTILE", "MASTER", "Verdict", "pick"]
