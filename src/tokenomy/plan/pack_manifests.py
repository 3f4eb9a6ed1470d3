"""Kubernetes manifests for a packed plan, and the gateway deployments that front them.

Per placement group (``pack-<i>``):

- a Deployment whose pod runs one vLLM container per engine: the base model with ``--enable-lora``,
  ``--max-loras``, ``--max-lora-rank`` and ``--lora-modules NAME=/adapters/NAME`` (each adapter a model name
  clients may ask for; the files come from the ``adapters_claim`` volume), and ``--gpu-memory-utilization`` set to
  the engine's planned share of the GPU when engines share one. Engines on one GPU each ask for one unit of
  ``shared_gpu_resource``: the NVIDIA device plugin's time-slicing (``sharing.timeSlicing``, renamed resource
  ``nvidia.com/gpu.shared``) on one-GPU nodes puts them on the same card. A group with one engine asks for
  ``nvidia.com/gpu`` (tensor parallel when the row needs several);
- a Service with one port per engine (8000, 8001, …);
- a KEDA ScaledObject on the *summed* queue depth of the group's gateway deployments (a base's gauge counts its
  adapters' requests too): ``threshold`` = utilisation x the largest engine concurrency, 0 to ``replicas``.

``tokenomy-deployments.yaml`` is the ``deployments:`` section of tokenomy's config for those servers: one
deployment per engine, its adapters listed (docs/plan.md, "Packed serving").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokenomy.errors import ConfigError, PlanDataError
from tokenomy.plan.manifests import PROMETHEUS_URL, ManifestSpec, deployment_document, labels_for
from tokenomy.plan.pack import Engine, PackResult, Placement

PORT = 8000


@dataclass(frozen=True, slots=True)
class PackManifestSpec:
    namespace: str = "default"
    vllm_image: str = "vllm/vllm-openai:v0.6.3"
    utilisation: float = 0.7
    activation_threshold: int = 5
    cooldown_s: int = 300
    polling_s: int = 30
    stabilisation_s: int = 300
    prometheus_url: str = PROMETHEUS_URL
    adapters_claim: str = "tokenomy-adapters"  # a PersistentVolumeClaim holding one directory per adapter
    shared_gpu_resource: str = "nvidia.com/gpu.shared"
    max_lora_rank: int = 16


def slug(text: str) -> str:
    """A DNS-1123 label from a model id: ``meta-llama/Llama-3.1-8B-Instruct`` -> ``llama-3-1-8b-instruct``."""
    tail = text.rsplit("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9]+", "-", tail).strip("-")[:40] or "model"


def engine_name(engine: Engine) -> str:
    """The gateway deployment (and container) name of an engine."""
    return slug(engine.model)


def _container(spec: PackManifestSpec, engine: Engine, port: int, share: float | None, resource: str) -> dict[str, Any]:
    args = ["--model", engine.model, "--port", str(port), "--tensor-parallel-size", str(engine.row.gpus)]
    if share is not None:
        args += ["--gpu-memory-utilization", f"{share:.2f}"]
    mounts = []
    if engine.adapters:
        args += ["--enable-lora", "--max-loras", str(len(engine.adapters)), "--max-lora-rank",
                 str(spec.max_lora_rank), "--lora-modules", *(f"{a}=/adapters/{a}" for a in engine.adapters)]
        mounts = [{"name": "adapters", "mountPath": "/adapters", "readOnly": True}]
    probe = {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 10}
    count = engine.row.gpus if share is None else 1
    container: dict[str, Any] = {
        "name": engine_name(engine), "image": spec.vllm_image, "args": args,
        "ports": [{"name": f"http-{port - PORT}", "containerPort": port}],
        "env": [{"name": "HUGGING_FACE_HUB_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}}}],
        "resources": {"limits": {resource: count}, "requests": {resource: count}},
        "readinessProbe": probe, "startupProbe": {**probe, "failureThreshold": 60},
    }
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _group(spec: PackManifestSpec, p: Placement, index: int, usable: float) -> list[dict[str, Any]]:
    """``usable``: the share of the GPU the engines may take together, split in proportion to their memory."""
    name = f"pack-{index}"
    shared = len(p.engines) > 1
    resource = spec.shared_gpu_resource if shared else "nvidia.com/gpu"
    containers = [_container(spec, e, PORT + k, usable * e.memory["total"] / p.memory_gb if shared else None,
                             resource) for k, e in enumerate(p.engines)]
    base = ManifestSpec(name=name, namespace=spec.namespace)
    deployment = deployment_document(base, name, "model-server", 0, containers[0])
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"] = containers
    if any(e.adapters for e in p.engines):
        pod["volumes"] = [{"name": "adapters",
                           "persistentVolumeClaim": {"claimName": spec.adapters_claim, "readOnly": True}}]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": spec.namespace, "labels": labels_for(name, "model-server")},
               "spec": {"selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": f"http-{k}", "port": PORT + k, "targetPort": PORT + k, "protocol": "TCP"}
                                  for k in range(len(p.engines))]}}
    return [deployment, service, _scaled_object(spec, p, name)]


def _scaled_object(spec: PackManifestSpec, p: Placement, name: str) -> dict[str, Any]:
    names = "|".join(engine_name(e) for e in p.engines)
    query = f'sum(tokenomy_deployment_queue_depth{{deployment=~"{names}"}})'
    threshold = max(1, math.floor(spec.utilisation * max(e.row.concurrency for e in p.engines)))
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels_for(name, "autoscaler")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "pollingInterval": spec.polling_s, "cooldownPeriod": spec.cooldown_s,
            "minReplicaCount": 0, "maxReplicaCount": p.replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
                "stabilizationWindowSeconds": spec.stabilisation_s}}}},
            "triggers": [{"type": "prometheus", "metadata": {
                "serverAddress": spec.prometheus_url, "query": query, "threshold": str(threshold),
                "activationThreshold": str(spec.activation_threshold)}}],
        },
    }


def gateway_deployments(result: PackResult) -> dict[str, Any]:
    """tokenomy's ``deployments:`` for the packed servers: one per engine, its adapters routable by name."""
    deployments = []
    for i, p in enumerate(result.placements):
        for k, e in enumerate(p.engines):
            entry: dict[str, Any] = {"name": engine_name(e), "provider": "vllm", "model": e.model,
                                     "base_url": f"http://pack-{i}:{PORT + k}/v1"}
            if e.adapters:
                entry["adapters"] = [{"name": a} for a in e.adapters]
            deployments.append(entry)
    return {"deployments": deployments}


def pack_manifest_files(result: PackResult, spec: PackManifestSpec, gpu_memory_gb: float) -> dict[str, Any]:
    names = [engine_name(e) for p in result.placements for e in p.engines]
    if len(set(names)) < len(names):
        raise PlanDataError(f"two models give the same deployment name ({', '.join(sorted(names))}); rename one "
                            "model's last path part")
    usable = result.memory_capacity_gb / gpu_memory_gb
    documents = [d for i, p in enumerate(result.placements) for d in _group(spec, p, i, usable)]
    return {"vllm-packed.yaml": documents, "tokenomy-deployments.yaml": gateway_deployments(result)}


def write_pack_manifests(result: PackResult, spec: PackManifestSpec, gpu_memory_gb: float, out: Path) -> list[Path]:
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for filename, content in pack_manifest_files(result, spec, gpu_memory_gb).items():
            path = out / filename
            text = (yaml.safe_dump_all(content, sort_keys=False) if isinstance(content, list)
                    else yaml.safe_dump(content, sort_keys=False))
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"cannot write manifests to {out}: {exc.strerror or exc}") from exc
    return written
