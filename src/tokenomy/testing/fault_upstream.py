"""A scriptable OpenAI-compatible upstream for failures no real server produces on demand, and for zero-delay
benchmarks. Behaviour is chosen by the requested model name (TensorZero's fake-provider habit):

    echo                 answer "echo: <last user text>" at once (the benchmark's zero-delay upstream)
    tools                answer with a call to the first tool offered
    error-<status>       answer that HTTP status with an OpenAI error body (429 carries retry-after: 0)
    retry-after-<s>      429 with ``retry-after: <s>``
    flaky-<n>[-tag]      503 for the first n calls of this exact model name, then echo
    timeout              never answer (the gateway's timeout must fire)
    reset                drop the connection without answering
    slow-stream          stream ten chunks 50 ms apart
    stall-stream         stream two chunks, then go silent
    break-stream         stream two chunks, then drop the connection
    garbage              answer 200 with a body that is not JSON
    sleep-<ms>[-tag]     echo after <ms> milliseconds
    serial-<ms>[-tag]    one call at a time, <ms> each whatever its size (a GPU-like server: a batch costs one pass)
    chaos-<a>-<b>[-tag]  a % of calls 429 (retry-after: 0), b % 500, the rest echo (seeded: repeatable)

It counts what it served (``GET /_stats``: calls per model, prompt and completion tokens) so tests can compare the
gateway's view with the upstream's. Run it alone with ``python -m tokenomy.testing.fault_upstream --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from typing import Any

import orjson
from aiohttp import web


class FaultUpstream:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.last_body: dict[str, Any] | None = None
        self.last_headers: dict[str, str] = {}
        self.answered: Counter[str] = Counter()  # successful answers per last user text (exactly-once checks)
        self._dice = random.Random(20261203)
        self._serial: dict[str, asyncio.Lock] = {}
        self.embedding_calls: Counter[str] = Counter()  # upstream /embeddings calls per model
        self.embedding_inputs = 0
        self.embedding_tokens = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/_stats", self.stats)
        app.router.add_get("/v1/models", self.models)
        return app

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """Deterministic 8-d vectors (``fake_vector``); usage counts words + 1 per input. ``error-<status>`` and
        ``sleep-<ms>`` models behave as for chat."""
        body = orjson.loads(await request.read())
        model = str(body.get("model", "embed"))
        self.embedding_calls[model] += 1
        failure = await self._failure(request, model)
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(str(t).split()) + 1 for t in inputs)
        self.embedding_inputs += len(inputs)
        self.embedding_tokens += tokens
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(str(t))} for i, t in enumerate(inputs)]
        return _json({"object": "list", "data": data, "model": model,
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def stats(self, request: web.Request) -> web.Response:
        return _json({"calls": dict(self.calls), "prompt_tokens": self.prompt_tokens,
                      "completion_tokens": self.completion_tokens})

    async def models(self, request: web.Request) -> web.Response:
        return _json({"object": "list", "data": [{"id": "echo", "object": "model", "created": 0, "owned_by": "x"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.last_body, self.last_headers = body, dict(request.headers)
        model = str(body.get("model", "echo"))
        self.calls[model] += 1
        failure = await self._failure(request, model)
        if failure is not None:
            return failure
        if body.get("stream"):
            return await self._stream(request, body, model)
        self.answered[self._answer(body)] += 1
        return _json(self._completion(body, model))

    async def _delay(self, model: str) -> None:
        if model.startswith("sleep-"):
            await asyncio.sleep(int(model.split("-")[1]) / 1000)
        if model.startswith("serial-"):
            async with self._serial.setdefault(model, asyncio.Lock()):
                await asyncio.sleep(int(model.split("-")[1]) / 1000)

    async def _failure(self, request: web.Request, model: str) -> web.StreamResponse | None:
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            headers = {"retry-after": "0"} if status == 429 else {}
            return _json({"error": {"message": f"scripted {status}", "type": "scripted", "param": None,
                                    "code": None}}, status=status, headers=headers)
        if model.startswith("retry-after-"):
            return _json({"error": {"message": "slow down", "type": "rate_limit", "param": None, "code": None}},
                         status=429, headers={"retry-after": model.removeprefix("retry-after-")})
        if model.startswith("flaky-"):
            failures = int(model.split("-")[1])
            if self.calls[model] <= failures:
                return _json({"error": {"message": "scripted flake", "type": "x", "param": None, "code": None}},
                             status=503)
        await self._delay(model)
        if model.startswith("chaos-"):
            _, rate_429, rate_500, *_tag = model.split("-")
            roll = self._dice.random() * 100
            if roll < float(rate_429):
                return _json({"error": {"message": "chaos 429", "type": "rate_limit", "param": None, "code": None}},
                             status=429, headers={"retry-after": "0"})
            if roll < float(rate_429) + float(rate_500):
                return _json({"error": {"message": "chaos 500", "type": "x", "param": None, "code": None}},
                             status=500)
        if model == "timeout":
            await asyncio.sleep(3600)
        if model == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if model == "garbage":
            return web.Response(body=b"<html>not json</html>", content_type="text/html")
        return None

    def _answer(self, body: dict[str, Any]) -> str:
        for msg in reversed(body.get("messages") or []):
            if msg.get("role") == "user":
                content = msg.get("content")
                text = content if isinstance(content, str) else " ".join(
                    p.get("text", "") for p in content or [] if isinstance(p, dict))
                return f"echo: {text}"
        return "echo:"

    def _usage(self, body: dict[str, Any], answer: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content") or "").split()) + 4 for m in body.get("messages") or [])
        completion = len(answer.split())
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        if model == "tools" and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": '{"echo": true}'}}]}
            finish, answer = "tool_calls", name
        else:
            answer = self._answer(body)
            message, finish = {"role": "assistant", "content": answer}, "stop"
        return {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": i, "message": message, "finish_reason": finish,
                                             "logprobs": None} for i in range(n)],
                "usage": self._usage(body, answer * n)}

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        answer = self._answer(body)
        words = answer.split(" ") if model != "slow-stream" else [f"w{i}" for i in range(10)]
        base = {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        await _send(resp, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]})
        for i, word in enumerate(words):
            if i == 2 and model in ("stall-stream", "break-stream"):
                if model == "break-stream":
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                await asyncio.sleep(3600)
            if model == "slow-stream":
                await asyncio.sleep(0.05)
            text = word if i == 0 else " " + word
            await _send(resp, {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
        await _send(resp, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = self._usage(body, " ".join(words))
        if (body.get("stream_options") or {}).get("include_usage"):
            await _send(resp, {**base, "choices": [], "usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def fake_vector(text: str) -> list[float]:
    """The fault upstream's embedding of ``text``: 8 numbers from its hash (tests recompute it)."""
    import hashlib

    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 4) for b in digest[:8]]


async def _send(resp: web.StreamResponse, chunk: dict[str, Any]) -> None:
    await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(FaultUpstream().app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
