"""Provider prompt-cache helpers: the stable prefix, sticky routing of a prefix to one self-hosted replica, and
OpenAI's prompt_cache_key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openai
import pytest

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import DeploymentConfig, LocalConfig, Settings
from tokenomy.promptcache.prefix import prefix_hash, rendezvous_order
from tokenomy.testing.fault_upstream import FaultUpstream

SYSTEM = {"role": "system", "content": "You are the support bot for ACME. Policies: ..."}


def test_prefix_is_everything_before_the_last_user_turn() -> None:
    a = {"model": "m", "messages": [SYSTEM, {"role": "user", "content": "first question"}]}
    b = {"model": "m", "messages": [SYSTEM, {"role": "user", "content": "another question"}]}
    c = {"model": "m", "messages": [{"role": "system", "content": "other bot"}, {"role": "user", "content": "x"}]}
    assert prefix_hash(a) == prefix_hash(b) != prefix_hash(c)
    turn2 = {"model": "m", "messages": [SYSTEM, {"role": "user", "content": "first question"},
                                        {"role": "assistant", "content": "answer"},
                                        {"role": "user", "content": "follow-up"}]}
    assert prefix_hash(turn2) != prefix_hash(a)  # the history is part of the next turn's prefix


def test_rendezvous_is_stable_and_spreads() -> None:
    names = ["r1", "r2", "r3"]
    firsts = [rendezvous_order(f"key{i}", names)[0] for i in range(300)]
    assert {n: firsts.count(n) for n in names} == pytest.approx({"r1": 100, "r2": 100, "r3": 100}, abs=30)
    # removing a replica moves only the keys that were on it
    moved = sum(1 for i, first in enumerate(firsts)
                if first != "r3" and rendezvous_order(f"key{i}", ["r1", "r2"])[0] != first)
    assert moved == 0


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[openai.OpenAI, FaultUpstream]]:
    with run_fault_upstream() as (base, upstream):
        deployments = [DeploymentConfig(name=f"vllm-{i}", provider="vllm", model="llama", base_url=base)
                       for i in range(3)]
        deployments.append(DeploymentConfig(name="oa", provider="openai", model="gpt-4o-mini", base_url=base,
                                            upstream_model="echo", api_key_env="FAKE_KEY"))
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False, deployments=deployments)
        with run_gateway(settings, env={"FAKE_KEY": "sk-test"}) as url:
            yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0), upstream


def test_shared_prefix_sticks_to_one_replica(replicas: tuple[openai.OpenAI, FaultUpstream]) -> None:
    client, upstream = replicas
    served = set()
    for i in range(10):
        raw = client.chat.completions.with_raw_response.create(
            model="llama", messages=[SYSTEM, {"role": "user", "content": f"question {i}"}])
        served.add(raw.headers["x-tokenomy-deployment"])
    assert len(served) == 1
    assert "prompt_cache_key" not in (upstream.last_body or {})  # only OpenAI gets the key
    spread = set()
    for _ in range(30):
        raw = client.chat.completions.with_raw_response.create(model="llama", messages=[
            {"role": "system", "content": f"bot {uuid.uuid4().hex}"}, {"role": "user", "content": "hi"}])
        spread.add(raw.headers["x-tokenomy-deployment"])
    assert spread == {"vllm-0", "vllm-1", "vllm-2"}


def test_openai_requests_carry_a_prefix_cache_key(replicas: tuple[openai.OpenAI, FaultUpstream]) -> None:
    client, upstream = replicas

    def key_for(messages: list[dict[str, str]], **extra: str) -> str:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_body=extra)  # type: ignore[arg-type]
        return str((upstream.last_body or {})["prompt_cache_key"])

    one = key_for([SYSTEM, {"role": "user", "content": "a"}])
    assert one.startswith("tk-") and one == key_for([SYSTEM, {"role": "user", "content": "b"}])
    assert key_for([{"role": "system", "content": "other"}, {"role": "user", "content": "a"}]) != one
    assert key_for([SYSTEM, {"role": "user", "content": "a"}], prompt_cache_key="mine") == "mine"


class _Unused:
    async def chat(self, call: object) -> object:  # never called: only the ordering is under test
        raise AssertionError("not called")


def test_busy_replica_is_skipped_for_the_next_in_prefix_order() -> None:
    from tokenomy.config.settings import RetryConfig
    from tokenomy.dispatch.catalog import Catalog
    from tokenomy.dispatch.dispatcher import Dispatcher
    from tokenomy.providers.registry import Deployment
    from tokenomy.wire.validation import validate_chat

    deps = [Deployment(DeploymentConfig(name=f"r{i}", provider="vllm", model="llama", base_url="http://x"),
                       _Unused()) for i in range(3)]
    dispatcher = Dispatcher(Catalog(deps), RetryConfig())
    chat = validate_chat({"model": "llama", "messages": [SYSTEM, {"role": "user", "content": "q"}]})
    preferred = [d.name for _, d in dispatcher._ordered(chat)]
    assert preferred == rendezvous_order(prefix_hash(chat.body), ["r0", "r1", "r2"])
    dispatcher.inflight[preferred[0]] = 10  # far above the group's mean (10/3 × 2)
    assert [d.name for _, d in dispatcher._ordered(chat)] == [*preferred[1:], preferred[0]]
