"""AnthropicProvider end to end against a local aiohttp server that replays recorded Messages API payloads.

The fake upstream picks its behaviour from the requested model name: ``overloaded`` (529), ``invalid`` (400),
``slow`` (answers after a second), ``broken-stream`` (overloaded error event mid-stream), ``cut-stream`` (the
connection ends before ``message_stop``); any other model answers with the text or, given tools, tool_use fixture.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tokenomy.errors import (
    CapabilityError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from tokenomy.providers.anthropic import AnthropicProvider
from tokenomy.providers.base import ChatCall

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-test-key"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


class FakeAnthropic:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, body))
        model = body["model"]
        errors = {"overloaded": ("error_overloaded.json", 529), "invalid": ("error_invalid_request.json", 400)}
        if model in errors:
            name, status = errors[model]
            return web.Response(status=status, body=(FIXTURES / name).read_bytes(), content_type="application/json")
        if model == "slow":
            await asyncio.sleep(1)
        kind = "tool_use" if body.get("tools") else "text"
        if not body.get("stream"):
            return web.Response(body=(FIXTURES / f"message_{kind}.json").read_bytes(), content_type="application/json")
        events = (FIXTURES / f"stream_{kind}.txt").read_bytes().split(b"\n\n")
        if model == "broken-stream":
            events = [*events[:4], b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                                   b'"message":"Overloaded"}}']
        elif model == "cut-stream":
            events = events[:5]
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await resp.prepare(request)
        for event in events:
            if event.strip():
                await resp.write(event + b"\n\n")
        await resp.write_eof()
        return resp


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield fake, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def provider(upstream: tuple[FakeAnthropic, str]) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(deployment="anthropic/claude-sonnet-4-5", base_url=upstream[1], api_key=KEY,
                          headers={"anthropic-beta": "test-beta"})
    try:
        yield p
    finally:
        await p.aclose()


def call(model: str = MODEL, *, stream: bool = False, timeout_s: float = 5.0, **extra: Any) -> ChatCall:
    body = {"model": model, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Capital of France?"}], **extra}
    if stream:
        body["stream"] = True
    return ChatCall(body=body, request_id="req-1", timeout_s=timeout_s)


async def collect(provider: AnthropicProvider, c: ChatCall) -> list[dict[str, Any]]:
    stream = await provider.chat(c)
    assert not isinstance(stream, dict)
    return [chunk async for chunk in stream]


async def test_sends_the_translated_body_with_anthropic_headers(
        upstream: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    completion = await provider.chat(call(max_tokens=100))
    assert isinstance(completion, dict)
    assert completion["model"] == MODEL
    assert completion["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert completion["usage"]["total_tokens"] == 31
    ((headers, body),) = upstream[0].requests
    assert (headers["x-api-key"], headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert (headers["content-type"], headers["anthropic-beta"]) == ("application/json", "test-beta")
    assert "authorization" not in headers
    assert body == {"model": MODEL, "max_tokens": 100, "system": "Be brief.",
                    "messages": [{"role": "user", "content": "Capital of France?"}]}


@pytest.mark.parametrize("tools", [False, True])
async def test_stream_carries_the_same_answer_as_non_stream(provider: AnthropicProvider, tools: bool) -> None:
    extra: dict[str, Any] = {"tools": [TOOL]} if tools else {}
    whole = await provider.chat(call(**extra))
    chunks = await collect(provider, call(stream=True, **extra))
    assert isinstance(whole, dict)
    message = whole["choices"][0]["message"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    arguments = "".join(tc["function"].get("arguments", "") for c in chunks if c["choices"]
                        for tc in c["choices"][0]["delta"].get("tool_calls") or [])
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert text == message["content"]
    assert finish == [whole["choices"][0]["finish_reason"]]
    assert chunks[-1]["usage"] == whole["usage"]
    if tools:
        assert orjson.loads(arguments) == orjson.loads(message["tool_calls"][0]["function"]["arguments"])


@pytest.mark.parametrize("stream", [False, True])
async def test_529_overloaded_is_unavailable(provider: AnthropicProvider, stream: bool) -> None:
    with pytest.raises(UpstreamUnavailableError) as caught:
        await provider.chat(call("overloaded", stream=stream))
    assert (caught.value.upstream_status, caught.value.message) == (529, "Overloaded")
    assert caught.value.deployment == "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize("stream", [False, True])
async def test_400_is_rejected(provider: AnthropicProvider, stream: bool) -> None:
    with pytest.raises(UpstreamRejectedError) as caught:
        await provider.chat(call("invalid", stream=stream))
    assert caught.value.upstream_status == 400
    assert "roles must alternate" in caught.value.message
    assert caught.value.retryable is False


async def test_error_event_mid_stream_raises_after_the_first_chunks(provider: AnthropicProvider) -> None:
    received: list[dict[str, Any]] = []
    stream = await provider.chat(call("broken-stream", stream=True))
    assert not isinstance(stream, dict)
    with pytest.raises(UpstreamUnavailableError):
        async for chunk in stream:
            received.append(chunk)
    assert received[-1]["choices"][0]["delta"] == {"content": "The capital"}


async def test_stream_cut_before_message_stop_is_a_protocol_error(provider: AnthropicProvider) -> None:
    with pytest.raises(UpstreamProtocolError, match="before message_stop"):
        await collect(provider, call("cut-stream", stream=True))


async def test_slow_upstream_times_out(provider: AnthropicProvider) -> None:
    with pytest.raises(UpstreamTimeoutError):
        await provider.chat(call("slow", timeout_s=0.2))


async def test_unreachable_upstream_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = AnthropicProvider(deployment="anthropic/down", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY)
    try:
        with pytest.raises(UpstreamConnectionError):
            await p.chat(call())
    finally:
        await p.aclose()


async def test_untranslatable_request_fails_before_sending(
        upstream: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    with pytest.raises(CapabilityError):
        await provider.chat(call(n=3))
    assert upstream[0].requests == []
