"""A learned router behind the Messages and Responses doors: ``tokenomy/<name>`` asked through the ``anthropic``
SDK and through ``responses.create`` is routed like the same chat request (the route headers say so, and the
chosen model's upstream is the one called)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from tests.routing.conftest import GSM8K

from servers import run_fault_upstream, run_gateway
from tokenomy.config.settings import (
    CacheConfig,
    DeploymentConfig,
    ExactCacheConfig,
    LocalConfig,
    RouterConfig,
    RoutingConfig,
    Settings,
)
from tokenomy.routing.outcomes import read_outcomes
from tokenomy.testing.fault_upstream import FaultUpstream

FRONTIER, CHEAP = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


@pytest.fixture(scope="module")
def routed(router_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as (base, upstream):  # both models answer as the upstream's echo
        deployments = [DeploymentConfig(name=name, provider="openai_compatible", model=name, upstream_model="echo",
                                        base_url=base, max_retries=0) for name in (FRONTIER, CHEAP)]
        settings = Settings(local=LocalConfig(enabled=False), env_providers=False,
                            home=str(tmp_path_factory.mktemp("router-doors")), deployments=deployments,
                            routing=RoutingConfig(routers={"cheap": RouterConfig(path=str(router_dir),
                                                                                 target="share=0")}),
                            cache=CacheConfig(exact=ExactCacheConfig(mode="off")))
        with run_gateway(settings) as url:
            yield url, upstream


def test_both_doors_are_routed_like_chat(routed: tuple[str, FaultUpstream]) -> None:
    url, _ = routed
    prompt = read_outcomes([GSM8K]).evaluation_rows()[0].prompt
    chat = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    asked = chat.chat.completions.with_raw_response.create(model="tokenomy/cheap", max_tokens=8,
                                                           messages=[{"role": "user", "content": prompt}])
    claude = anthropic.Anthropic(base_url=url.removesuffix("/v1"), api_key="unused", max_retries=0)
    message = claude.messages.with_raw_response.create(model="tokenomy/cheap", max_tokens=8,
                                                       messages=[{"role": "user", "content": prompt}])
    reply = chat.responses.with_raw_response.create(model="tokenomy/cheap", max_output_tokens=8, input=prompt)
    for raw in (asked, message, reply):
        assert raw.headers["x-tokenomy-model"] == "echo"
        assert raw.headers["x-tokenomy-deployment"] == asked.headers["x-tokenomy-deployment"]
        assert raw.headers["x-tokenomy-route"] == asked.headers["x-tokenomy-route"] == CHEAP  # share=0: the cheap one
    assert message.parse().content[0].text == "echo: " + prompt  # type: ignore[union-attr]
    assert reply.parse().output_text == "echo: " + prompt
