"""``tokenomy plan pack``: the packing arithmetic, the example workloads, the CLI's JSON and errors, and the
packed manifests (validated as the other manifests are)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from tokenomy.cli.main import cli
from tokenomy.config.settings import load_settings
from tokenomy.plan.autoscale import ScalingPolicy
from tokenomy.plan.data import load_gpus, load_throughput
from tokenomy.plan.pack import PackResult, pack_workloads
from tokenomy.plan.pack_input import read_pack_file
from tokenomy.plan.serving import load_serving

from .scaledobject_schema import SCALED_OBJECT

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples" / "pack"
H8 = {"model": "org/base-8b", "model_size": "8B", "precision": "fp16", "input_tokens": 1500, "output_tokens": 500}


def _pack(tmp_path: Path, workloads: list[dict[str, Any]], policy: ScalingPolicy | None = None) -> PackResult:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({"gpu": "H100", "workloads": workloads}))
    gpus = load_gpus()
    return pack_workloads(read_pack_file(path), load_throughput(None, gpus), gpus, load_serving(),
                          policy or ScalingPolicy())


def _example(name: str) -> PackResult:
    gpus = load_gpus()
    return pack_workloads(read_pack_file(EXAMPLES / name), load_throughput(None, gpus), gpus, load_serving(),
                          ScalingPolicy())


@pytest.mark.parametrize(("name", "unpacked", "packed"), [("students.yaml", 6, 1), ("follow-the-sun.yaml", 4, 2),
                                                          ("big-models.yaml", 9, 9)])
def test_examples_pack_as_documented(name: str, unpacked: int, packed: int) -> None:
    result = _example(name)
    assert (result.unpacked.gpus, result.packed.gpus) == (unpacked, packed)
    assert result.packed.on_demand_usd_per_month <= result.unpacked.on_demand_usd_per_month
    assert result.packed.utilisation_mean >= result.unpacked.utilisation_mean - 1e-9
    for p in result.placements:  # every hour within the target; shared GPUs within their memory
        assert max(p.load()) / p.efficiency <= 0.7 * p.replicas + 1e-9
        if len(p.engines) > 1:
            assert p.memory_gb <= result.memory_capacity_gb


def test_peaks_that_interleave_share_a_gpu(tmp_path: Path) -> None:
    # each alone peaks at ~0.39 of a replica: their peaks summed exceed the target, their hourly sum does not
    day = {**H8, "queries_per_day": 700_000, "input_tokens": 300, "output_tokens": 100, "curve": "office-hours"}
    night = {**day, "name": "night", "model": "org/other-8b", "shift_hours": 12}
    result = _pack(tmp_path, [{**day, "name": "day"}, night])
    assert result.unpacked.gpus == 2 and result.packed.gpus == 1
    assert sum(max(m.load) for m in result.members) > 0.7
    same_hours = _pack(tmp_path, [{**day, "name": "day"}, {**night, "shift_hours": 0}])
    assert same_hours.packed.gpus == 2


def test_adapters_share_their_base_weights_and_pay_the_lora_penalty(tmp_path: Path) -> None:
    base = {**H8, "name": "chat", "queries_per_day": 10_000}
    adapters = [{"name": f"a{i}", "model": "org/base-8b", "adapter": f"a{i}", "queries_per_day": 5_000,
                 "input_tokens": 300, "output_tokens": 5} for i in range(5)]
    result = _pack(tmp_path, [base, *adapters])
    [placement] = result.placements
    [engine] = placement.engines
    assert engine.adapters == [f"a{i}" for i in range(5)]
    assert engine.memory["weights"] == pytest.approx(8.03 * 2, abs=0.1)  # one copy of the base
    assert 0 < engine.memory["adapters"] < 1
    member = engine.members[0]
    assert max(member.load) == pytest.approx(max(member.work) / 0.85)  # LoRA-enabled engine: 85 % of the speed
    assert result.unpacked.gpus == 6


def test_memory_keeps_a_70b_model_to_itself(tmp_path: Path) -> None:
    big = {"name": "big", "model": "org/70b", "model_size": "70B", "precision": "fp8", "queries_per_day": 1_000,
           "input_tokens": 500, "output_tokens": 100}
    result = _pack(tmp_path, [big, {**H8, "name": "small", "queries_per_day": 1_000}])
    assert result.packed.gpus == 2  # both tiny loads, but the 70B weights leave no room for a second model


def test_json_has_the_documented_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENOMY_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["plan", "pack", "--workloads", str(EXAMPLES / "students.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in ("unpacked", "packed"):
        assert set(doc[key]) >= {"gpus", "utilisation", "usd_per_month"}
        assert set(doc[key]["usd_per_month"]) == {"on_demand", "spot", "autoscaled"}
        assert set(doc[key]["utilisation"]) == {"mean", "peak"}
    assert doc["placement"][0]["engines"][0]["adapters"] == ["triage", "reply-check", "topic", "summarise"]
    assert doc["gpus_saved"] == 5 and doc["utilisation_claim"]["verdict"]


@pytest.mark.parametrize(("workloads", "message"), [
    ({"workloads": []}, "non-empty 'workloads'"),
    ({"workloads": [{**H8, "name": "x", "queries_per_day": 1, "colour": "red"}]}, "unknown field"),
    ({"workloads": [{"name": "x", "model": "m", "adapter": "a", "queries_per_day": 1, "input_tokens": 1,
                     "output_tokens": 1}]}, "no row gives model_size"),
    ({"workloads": [{**H8, "name": "x", "queries_per_day": 1}, {**H8, "name": "x", "queries_per_day": 2,
                                                                "adapter": "b"}]}, "duplicate workload name"),
    ({"workloads": [{**H8, "name": "x", "queries_per_day": 1, "precision": "int4"}]}, "no throughput row"),
])
def test_bad_workloads_are_one_line_errors(tmp_path: Path, workloads: dict[str, Any], message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(workloads))
    result = CliRunner().invoke(cli, ["plan", "pack", "--workloads", str(path)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_packed_manifests_validate_and_front_the_adapters(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(cli, ["plan", "pack", "--workloads", str(EXAMPLES / "students.yaml"),
                                      "--manifests", str(out), "--json"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all((out / "vllm-packed.yaml").read_text()))
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "ScaledObject"]
    deployment, service, scaler = documents
    kubernetes_validate.validate(deployment, "1.30.0", strict=True)
    kubernetes_validate.validate(service, "1.30.0", strict=True)
    jsonschema.validate(scaler, SCALED_OBJECT)
    llama, coder = deployment["spec"]["template"]["spec"]["containers"]
    assert "--enable-lora" in llama["args"] and "triage=/adapters/triage" in llama["args"]
    assert "--enable-lora" not in coder["args"]
    shares = [float(c["args"][c["args"].index("--gpu-memory-utilization") + 1]) for c in (llama, coder)]
    assert sum(shares) <= 0.9 + 1e-9 and all(s > 0.2 for s in shares)
    assert llama["resources"]["limits"] == {"nvidia.com/gpu.shared": 1}
    query = scaler["spec"]["triggers"][0]["metadata"]["query"]
    names = "llama-3-1-8b-instruct|qwen2-5-coder-7b-instruct"
    assert query == f'sum(tokenomy_deployment_queue_depth{{deployment=~"{names}"}})'
    config = tmp_path / "tokenomy.yaml"
    config.write_text((out / "tokenomy-deployments.yaml").read_text())
    settings = load_settings(str(config), env={})
    assert settings.deployments is not None
    assert [a.name for a in settings.deployments[0].adapters] == ["triage", "reply-check", "topic", "summarise"]
