"""``tokenomy plan manifests``: Deployments and Services validate against the Kubernetes JSON schemas shipped by
``kubernetes-validate`` (offline, strict: unknown fields fail); the ScaledObject against the minimal KEDA schema
in ``scaledobject_schema.py``."""

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
from tokenomy.plan.manifests import ManifestSpec, manifest_files, scaled_object

from .scaledobject_schema import SCALED_OBJECT

K8S_VERSION = "1.30.0"


def _validate(document: dict[str, Any]) -> None:
    if document["apiVersion"] == "keda.sh/v1alpha1":
        jsonschema.validate(document, SCALED_OBJECT)
    else:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def _written(tmp_path: Path, *extra: str) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "k8s"
    result = CliRunner().invoke(cli, ["plan", *extra, "manifests", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {p.name: list(yaml.safe_load_all(p.read_text())) for p in sorted(out.iterdir())}


def test_written_manifests_validate(tmp_path: Path) -> None:
    files = _written(tmp_path)
    assert set(files) == {"keda-scaledobject.yaml", "vllm.yaml", "tokenomy.yaml"}
    kinds = sorted((d["kind"], d["metadata"]["name"]) for docs in files.values() for d in docs)
    assert kinds == [("Deployment", "self-hosted-small"), ("Deployment", "tokenomy"), ("Job", "tokenomy-migrate"),
                     ("ScaledObject", "self-hosted-small"), ("ScaledObject", "tokenomy"),
                     ("Service", "self-hosted-small"), ("Service", "tokenomy")]
    for docs in files.values():
        for document in docs:
            _validate(document)


def test_scaled_object_scales_to_zero_on_tokenomy_queue_depth(tmp_path: Path) -> None:
    spec = _written(tmp_path)["keda-scaledobject.yaml"][0]["spec"]
    assert spec["minReplicaCount"] == 0 and spec["cooldownPeriod"] == 300
    assert spec["scaleTargetRef"]["name"] == "self-hosted-small"
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == 'sum(tokenomy_deployment_queue_depth{deployment="self-hosted-small"})'
    assert trigger["metadata"]["activationThreshold"] == "5"
    assert trigger["metadata"]["threshold"] == str(int(0.7 * 256))  # utilisation x the H100 8B row's concurrency


def test_max_replicas_is_sized_from_the_workload(tmp_path: Path) -> None:
    files = _written(tmp_path, "--queries-per-day", "5000000", "--input-tokens", "1500", "--output-tokens", "500")
    assert files["keda-scaledobject.yaml"][0]["spec"]["maxReplicaCount"] > 10


def test_the_metric_name_is_the_one_tokenomy_exports() -> None:
    from tokenomy.ledger.metrics import Metrics

    metrics = Metrics()
    metrics.watch({}, lambda: {"self-hosted-small": 3}, lambda: 0)
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert 'tokenomy_deployment_queue_depth{deployment="self-hosted-small"} 3.0' in text
    assert "tokenomy_deployment_queue_depth" in json.dumps(scaled_object(ManifestSpec()))


@pytest.mark.parametrize("breakage", ["typo", "no_triggers", "bad_threshold", "bad_replicas"])
def test_the_validators_reject_broken_manifests(breakage: str) -> None:
    documents = manifest_files(ManifestSpec())
    so, deployment = documents["keda-scaledobject.yaml"][0], documents["vllm.yaml"][0]
    if breakage == "typo":
        so["spec"]["minReplicas"] = 0
    elif breakage == "no_triggers":
        del so["spec"]["triggers"]
    elif breakage == "bad_threshold":
        so["spec"]["triggers"][0]["metadata"]["threshold"] = 5
    else:
        deployment["spec"]["replicas"] = "zero"
        with pytest.raises(kubernetes_validate.ValidationError):
            _validate(deployment)
        return
    with pytest.raises(jsonschema.ValidationError):
        _validate(so)


def test_the_gateway_runs_as_replicas_on_postgres_and_redis(tmp_path: Path) -> None:
    documents = _written(tmp_path)["tokenomy.yaml"]
    gateway, _, migrate, scaler = documents
    pod = gateway["spec"]["template"]["spec"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in pod["containers"][0]["env"] if "valueFrom" in e}
    assert gateway["spec"]["replicas"] == 3
    assert env["TOKENOMY_DATABASE_URL"] == {"name": "tokenomy-stores", "key": "database_url"}
    assert env["TOKENOMY_REDIS_URL"] == {"name": "tokenomy-stores", "key": "redis_url"}
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["tokenomy", "db", "upgrade"]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "tokenomy" and scaler["spec"]["minReplicaCount"] == 3
    queue = scaler["spec"]["triggers"][0]
    assert queue["type"] == "postgresql" and "procrastinate_jobs" in queue["metadata"]["query"]
    assert queue["metadata"]["connectionFromEnv"] in env  # the scaler reads the URL from the gateway's own env
    for document in documents:
        _validate(document)
