"""Kubernetes manifests for a self-hosted tier scaled by KEDA on tokenomy's queue-depth metric, and for tokenomy.

- ``vllm.yaml``: Deployment + Service for one vLLM OpenAI-compatible server per replica (``nvidia.com/gpu``).
- ``keda-scaledobject.yaml``: a KEDA ``ScaledObject`` on that Deployment: Prometheus trigger on
  ``sum(tokenomy_deployment_queue_depth{deployment="<name>"})`` (the gauge tokenomy's ``/metrics`` exports: requests
  waiting for or holding the deployment's capacity), ``minReplicaCount: 0``, ``activationThreshold``,
  ``cooldownPeriod``, and the HPA's scale-down stabilisation window.
- ``tokenomy.yaml``: the gateway as ``gateway_replicas`` stateless replicas (Deployment + Service, readiness on
  ``/readyz``, liveness on ``/healthz``), its stores from the ``tokenomy-stores`` Secret (``database_url``:
  PostgreSQL, ``redis_url``: Redis, ``master_key``), a Job that applies the migrations (``tokenomy db upgrade``), and
  a KEDA ``ScaledObject`` that adds replicas (up to ``gateway_max_replicas``) on the batch queue's depth (jobs
  waiting in PostgreSQL) and on upstream calls in flight; annotated for Prometheus scraping (docs/scale.md).

Point tokenomy's deployment ``<name>`` at ``http://<name>:8000/v1`` so its queue depth is the one KEDA reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokenomy.errors import ConfigError

PROMETHEUS_URL = "http://prometheus-server.monitoring.svc:9090"


@dataclass(frozen=True, slots=True)
class ManifestSpec:
    name: str = "self-hosted-small"  # the Deployment/Service name and tokenomy's deployment label
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    vllm_image: str = "vllm/vllm-openai:v0.6.3"
    tokenomy_image: str = "tokenomy:0.1.0"  # build it from this repository; no public image is published
    namespace: str = "default"
    gpus_per_replica: int = 1
    max_replicas: int = 4
    concurrency: int = 256  # requests in flight per replica at saturation (throughput catalogue)
    utilisation: float = 0.7
    activation_threshold: int = 5
    cooldown_s: int = 300
    polling_s: int = 30
    stabilisation_s: int = 300
    prometheus_url: str = PROMETHEUS_URL
    gateway_replicas: int = 3
    gateway_max_replicas: int = 12
    gateway_jobs_per_replica: int = 20  # batch jobs waiting per replica before KEDA adds one
    gateway_inflight_per_replica: int = 200  # upstream calls in flight per replica before KEDA adds one
    stores_secret: str = "tokenomy-stores"

    @property
    def threshold(self) -> int:
        """Queue depth per replica KEDA aims for: the sizing's utilisation of the replica's concurrency."""
        return max(1, math.floor(self.utilisation * self.concurrency))


def labels_for(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "tokenomy",
            "app.kubernetes.io/component": component}


def deployment_document(spec: ManifestSpec, name: str, component: str, replicas: int, container: dict[str, Any],
                annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels_for(name, component)
    template_meta: dict[str, Any] = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"metadata": template_meta, "spec": {"containers": [container]}}}}


def _service(spec: ManifestSpec, name: str, component: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": spec.namespace, "labels": labels_for(name, component)},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]}}


def vllm_documents(spec: ManifestSpec) -> list[dict[str, Any]]:
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "vllm", "image": spec.vllm_image,
        "args": ["--model", spec.model, "--port", "8000", "--tensor-parallel-size", str(spec.gpus_per_replica)],
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [{"name": "HUGGING_FACE_HUB_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}}}],
        "resources": {"limits": {"nvidia.com/gpu": spec.gpus_per_replica},
                      "requests": {"nvidia.com/gpu": spec.gpus_per_replica}},
        "readinessProbe": probe,
        "startupProbe": {**probe, "failureThreshold": 60},
    }
    # replicas: 0 — KEDA owns the count (minReplicaCount 0); the first request above the activation threshold
    # brings one up.
    return [deployment_document(spec, spec.name, "model-server", 0, container),
            _service(spec, spec.name, "model-server", 8000)]


def scaled_object(spec: ManifestSpec) -> dict[str, Any]:
    query = f'sum(tokenomy_deployment_queue_depth{{deployment="{spec.name}"}})'
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels_for(spec.name, "autoscaler")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "pollingInterval": spec.polling_s, "cooldownPeriod": spec.cooldown_s,
            "minReplicaCount": 0, "maxReplicaCount": spec.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
                "stabilizationWindowSeconds": spec.stabilisation_s}}}},
            "triggers": [{"type": "prometheus", "metadata": {
                "serverAddress": spec.prometheus_url, "query": query, "threshold": str(spec.threshold),
                "activationThreshold": str(spec.activation_threshold)}}],
        },
    }


def _store_env(spec: ManifestSpec) -> list[dict[str, Any]]:
    def secret(name: str, key: str, optional: bool = False) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": spec.stores_secret, "key": key}
        if optional:
            ref["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}

    return [secret("TOKENOMY_DATABASE_URL", "database_url"), secret("TOKENOMY_REDIS_URL", "redis_url"),
            secret("TOKENOMY_MASTER_KEY", "master_key", optional=True),
            {"name": "TOKENOMY_HOME", "value": "/var/lib/tokenomy"}]


def tokenomy_documents(spec: ManifestSpec) -> list[dict[str, Any]]:
    container = {
        "name": "tokenomy", "image": spec.tokenomy_image,
        "args": ["tokenomy", "serve", "--host", "0.0.0.0", "--port", "4000"],
        "ports": [{"name": "http", "containerPort": 4000}],
        "env": _store_env(spec),
        "envFrom": [{"secretRef": {"name": "tokenomy-env", "optional": True}}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        # the ledger's spill file lives here while PostgreSQL is away; it survives container restarts in the pod
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/tokenomy"}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    }
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": "4000", "prometheus.io/path": "/metrics"}
    gateway = deployment_document(spec, "tokenomy", "gateway", spec.gateway_replicas, container, scrape)
    gateway["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    migrate = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "tokenomy-migrate", "namespace": spec.namespace,
                            "labels": labels_for("tokenomy-migrate", "migration")},
               "spec": {"backoffLimit": 6, "template": {
                   "metadata": {"labels": labels_for("tokenomy-migrate", "migration")},
                   "spec": {"restartPolicy": "OnFailure", "containers": [{
                       "name": "migrate", "image": spec.tokenomy_image, "args": ["tokenomy", "db", "upgrade"],
                       "env": _store_env(spec)[:1]}]}}}}
    return [gateway, _service(spec, "tokenomy", "gateway", 4000), migrate, gateway_scaled_object(spec)]


def gateway_scaled_object(spec: ManifestSpec) -> dict[str, Any]:
    """More gateway replicas when batch jobs wait in the queue (procrastinate's table) or upstream calls pile up."""
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "tokenomy", "namespace": spec.namespace, "labels": labels_for("tokenomy", "autoscaler")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tokenomy",
                               "envSourceContainerName": "tokenomy"},
            "pollingInterval": spec.polling_s, "cooldownPeriod": spec.cooldown_s,
            "minReplicaCount": spec.gateway_replicas, "maxReplicaCount": spec.gateway_max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
                "stabilizationWindowSeconds": spec.stabilisation_s}}}},
            "triggers": [
                {"type": "postgresql", "name": "batch-queue-depth", "metadata": {
                    "connectionFromEnv": "TOKENOMY_DATABASE_URL",
                    "query": "SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'todo'",
                    "targetQueryValue": str(spec.gateway_jobs_per_replica), "activationTargetQueryValue": "1"}},
                {"type": "prometheus", "name": "upstream-inflight", "metadata": {
                    "serverAddress": spec.prometheus_url, "query": "sum(tokenomy_upstream_inflight)",
                    "threshold": str(spec.gateway_inflight_per_replica)}},
            ],
        },
    }


def manifest_files(spec: ManifestSpec) -> dict[str, list[dict[str, Any]]]:
    return {"vllm.yaml": vllm_documents(spec), "keda-scaledobject.yaml": [scaled_object(spec)],
            "tokenomy.yaml": tokenomy_documents(spec)}


def write_manifests(spec: ManifestSpec, out: Path) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, documents in manifest_files(spec).items():
            path = out / filename
            path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"cannot write manifests to {out}: {exc.strerror or exc}") from exc
    return written
