"""The gateway over the scriptable fault upstream, driven by the official openai SDK."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from servers import run_gateway
from tokenomy.config.settings import DeploymentConfig, LocalConfig, RetryConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def _dep(name: str, base: str, upstream: str, *, model: str | None = None, tier: str = "medium",
         **extra: Any) -> DeploymentConfig:
    return DeploymentConfig(name=name, provider="openai_compatible", model=model or name, tier=tier,  # type: ignore[arg-type]
                            upstream_model=upstream, base_url=base, **extra)


@pytest.fixture(scope="module")
def gateway(fault: tuple[str, FaultUpstream]) -> Iterator[str]:
    base, _ = fault
    tag = uuid.uuid4().hex[:6]
    deployments = [
        _dep("echo", base, "echo", tier="small"),
        _dep("tools", base, "tools"),
        _dep("flaky", base, f"flaky-2-{tag}"),
        _dep("always-500", base, "error-500"),
        _dep("primary", base, "error-503"),
        _dep("backup", base, "echo", model="primary"),  # same public name: second deployment of 'primary'
        _dep("chain-a", base, "error-500"),
        _dep("chain-b", base, "echo"),
        _dep("slow-429", base, "retry-after-120"),
        _dep("timeout", base, "timeout", timeout_s=0.5, max_retries=0),
        _dep("reset", base, "reset", max_retries=0),
        _dep("bad-request", base, "error-400"),
        _dep("garbage", base, "garbage", max_retries=0),
        _dep("break-stream", base, "break-stream", max_retries=0),
        _dep("stall-stream", base, "stall-stream", max_retries=0),
        _dep("slow-stream", base, "slow-stream"),
    ]
    settings = Settings(
        deployments=deployments,
        fallbacks={"chain-a": ["chain-b"], "slow-429": ["echo"]},
        retry=RetryConfig(max_retries=2, base_delay_ms=1, max_delay_ms=5, cooldown_s=0.01,
                          stream_idle_timeout_s=0.5),
        local=LocalConfig(enabled=False),
    )
    with run_gateway(settings) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0)


def _ask(client: openai.OpenAI, model: str, text: str = "hello there", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw)


def test_plain_answer_carries_tokenomy_headers(client: openai.OpenAI) -> None:
    raw = _ask(client, "echo", "ping me")
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: ping me"
    assert raw.headers["x-tokenomy-model"] == "echo"
    assert raw.headers["x-tokenomy-tier"] == "small"
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_retries_then_succeeds_on_same_deployment(client: openai.OpenAI, fault: tuple[str, FaultUpstream]) -> None:
    _, upstream = fault
    raw = _ask(client, "flaky")
    assert raw.parse().choices[0].message.content == "echo: hello there"
    flaky = [m for m in upstream.calls if m.startswith("flaky-2-")]
    assert upstream.calls[flaky[0]] == 3  # two scripted 503s, then the answer


def test_second_deployment_of_same_model_takes_over(client: openai.OpenAI) -> None:
    raw = _ask(client, "primary")
    assert raw.headers["x-tokenomy-deployment"] == "backup"


def test_fallback_chain_moves_to_next_model(client: openai.OpenAI) -> None:
    raw = _ask(client, "chain-a")
    assert raw.headers["x-tokenomy-deployment"] == "chain-b"


def test_long_retry_after_moves_on_instead_of_waiting(client: openai.OpenAI) -> None:
    start = time.monotonic()
    raw = _ask(client, "slow-429")
    assert raw.headers["x-tokenomy-deployment"] == "echo"
    assert time.monotonic() - start < 5


def test_all_failing_lists_every_attempt(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        _ask(client, "always-500")
    assert info.value.status_code == 502
    message = info.value.body["message"]  # type: ignore[index]
    assert message.count("always-500: HTTP 500") == 3  # first try + 2 retries


def test_timeout_is_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _ask(client, "timeout")
    assert info.value.status_code == 504


def test_connection_reset_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _ask(client, "reset")
    assert info.value.status_code == 502
    assert "upstream_connection_error" in str(info.value.body)


def test_non_json_upstream_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        _ask(client, "garbage")
    assert info.value.status_code == 502


def test_upstream_400_is_returned_without_retry(client: openai.OpenAI, fault: tuple[str, FaultUpstream]) -> None:
    _, upstream = fault
    before = upstream.calls["error-400"]
    with pytest.raises(openai.BadRequestError):
        _ask(client, "bad-request")
    assert upstream.calls["error-400"] == before + 1


def test_tools_round_trip(client: openai.OpenAI, fault: tuple[str, FaultUpstream]) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    first = client.chat.completions.create(model="tools", messages=[{"role": "user", "content": "weather?"}],
                                           tools=tools, tool_choice="auto")  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"echo": True}
    assert first.choices[0].finish_reason == "tool_calls"
    second = client.chat.completions.create(model="echo", tools=tools, messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ])
    assert second.choices[0].message.content == "echo: weather?"
    _, upstream = fault
    assert upstream.last_body is not None and upstream.last_body["messages"][2]["tool_call_id"] == call.id


def test_n_and_parameters_pass_through(client: openai.OpenAI, fault: tuple[str, FaultUpstream]) -> None:
    completion = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "x"}], n=2, seed=7, stop=["\n"],
        max_completion_tokens=5, response_format={"type": "json_object"}, user="u1", extra_body={"top_k": 3})
    assert [c.index for c in completion.choices] == [0, 1]
    _, upstream = fault
    body = upstream.last_body or {}
    assert (body["n"], body["seed"], body["stop"], body["max_completion_tokens"], body["top_k"]) == (
        2, 7, ["\n"], 5, 3)
    assert body["model"] == "echo"


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a b c"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: a b c"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_stream_without_usage_strips_it(client: openai.OpenAI, fault: tuple[str, FaultUpstream]) -> None:
    chunks = list(client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "a"}],
                                                 stream=True))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    _, upstream = fault
    assert (upstream.last_body or {})["stream_options"] == {"include_usage": True}  # asked upstream anyway


def test_stream_that_breaks_ends_with_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="break-stream", messages=[{"role": "user", "content": "a b c d"}],
                                            stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError, match="stream broke"):
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "echo: a"  # the two chunks sent before the break


def test_stream_that_stalls_ends_with_error(client: openai.OpenAI) -> None:
    start = time.monotonic()
    with pytest.raises(openai.APIError, match=r"stalled|timeout|broke"):
        list(client.chat.completions.create(model="stall-stream", messages=[{"role": "user", "content": "a b c"}],
                                            stream=True))
    assert time.monotonic() - start < 5


async def test_async_client_concurrent_streams(gateway: str) -> None:
    import asyncio

    client = openai.AsyncOpenAI(base_url=gateway, api_key="unused", max_retries=0)

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model="slow-stream", messages=[{"role": "user", "content": str(i)}], stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    start = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(20)))
    assert results == [" ".join(f"w{j}" for j in range(10))] * 20
    assert time.monotonic() - start < 5  # 20 streams of ~0.5 s each ran concurrently (sequentially: 10 s)
    await client.close()


def test_malformed_requests_are_400_and_never_reach_upstream(gateway: str, fault: tuple[str, FaultUpstream]) -> None:
    _, upstream = fault
    before = sum(upstream.calls.values())
    cases = [
        (b"{not json", None),
        (b"[1, 2]", None),
        (json.dumps({"model": "echo"}).encode(), "messages"),
        (json.dumps({"model": "echo", "messages": []}).encode(), "messages"),
        (json.dumps({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}).encode(), "messages[0].role"),
        (json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": 3}).encode(),
         "temperature"),
        (json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}).encode(),
         "max_tokens"),
        (json.dumps({"model": "echo", "messages": [{"role": "tool", "content": "x", "tool_call_id": "nope"}]}).encode(),
         "messages[0].tool_call_id"),
        (json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}],
                     "tool_choice": {"type": "function", "function": {"name": "f"}}}).encode(), "tool_choice"),
        (json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x"}],
                     "stream_options": {"include_usage": True}}).encode(), "stream_options"),
    ]
    for raw, param in cases:
        status, body = _post(gateway + "/chat/completions", raw)
        assert status == 400, (raw, body)
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] == param, (raw, body)
        assert "\n" not in body["error"]["message"]
    assert sum(upstream.calls.values()) == before


def test_unknown_model_is_404_listing_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        _ask(client, "gpt-17")
    assert "available: echo" in info.value.body["message"]  # type: ignore[index]
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_too_large_is_413(gateway: str) -> None:
    big = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "x" * (21 * 1024 * 1024)}]})
    status, body = _post(gateway + "/chat/completions", big.encode())
    assert status == 413 and body["error"]["code"] == "request_too_large"


def test_unknown_route_and_method_use_openai_errors(gateway: str) -> None:
    status, body = _post(gateway + "/nope", b"{}")
    assert status == 404 and body["error"]["code"] == "unknown_url"
    req = urllib.request.Request(gateway + "/chat/completions", method="GET")
    status, body = _send(req)
    assert status == 405 and body["error"]["type"] == "invalid_request_error"


def test_models_and_health(client: openai.OpenAI, gateway: str) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"echo", "primary", "small", "medium"} <= ids
    assert client.models.retrieve("echo").id == "echo"
    status, body = _send(urllib.request.Request(gateway.removesuffix("/v1") + "/healthz"))
    assert status == 200 and body["status"] == "ok" and len(body["deployments"]) == 16


def test_tier_name_routes_to_tier(client: openai.OpenAI) -> None:
    raw = _ask(client, "small")
    assert raw.headers["x-tokenomy-tier"] == "small"


def _post(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    return _send(req)


def _send(req: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_cost_headers_and_metrics(client: openai.OpenAI, gateway: str) -> None:
    raw = _ask(client, "echo", "one two three")
    usage = raw.parse().usage
    assert usage is not None
    # unpriced OpenAI-compatible model: never a silent $0
    assert raw.headers["x-tokenomy-cost-usd"] == "unknown"
    with urllib.request.urlopen(gateway.removesuffix("/v1") + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'tokenomy_requests_total{cache="none",model="echo",status="200",tier="small"}' in text
    assert 'tokenomy_upstream_errors_total{code="upstream_error",deployment="always-500"}' in text
    assert "tokenomy_upstream_inflight" in text and "tokenomy_ledger_backlog" in text
