"""A minimal JSON schema for a KEDA ``ScaledObject`` (keda.sh/v1alpha1), written for these tests from the fields,
types and ``required`` lists of the ``openAPIV3Schema`` in KEDA's CRD (config/crd/bases/keda.sh_scaledobjects.yaml)
and the Prometheus scaler's documented metadata. No package on PyPI ships KEDA's CRD schema, so this is the check;
unlike the CRD it forbids unknown keys in ``spec`` so a misspelt field fails.
"""

from __future__ import annotations

from typing import Any

_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}

PROMETHEUS_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["serverAddress", "query", "threshold"],
    "additionalProperties": {"type": "string"},
    "properties": {"serverAddress": {"type": "string", "pattern": "^https?://"}, "query": {"type": "string"},
                   "threshold": _QUANTITY, "activationThreshold": _QUANTITY},
}

SCALED_OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}}},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                  "name": {"type": "string"},
                                                  "envSourceContainerName": {"type": "string"}}},
                "pollingInterval": _INT32, "cooldownPeriod": _INT32, "initialCooldownPeriod": _INT32,
                "idleReplicaCount": _INT32, "minReplicaCount": _INT32, "maxReplicaCount": _INT32,
                "advanced": {"type": "object", "additionalProperties": False, "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {"type": "object", "additionalProperties": False, "properties": {
                        "name": {"type": "string"},
                        "behavior": {"type": "object", "additionalProperties": False, "properties": {
                            "scaleUp": {"$ref": "#/$defs/rules"}, "scaleDown": {"$ref": "#/$defs/rules"}}}}},
                    "scalingModifiers": {"type": "object"}}},
                "fallback": {"type": "object", "required": ["failureThreshold", "replicas"]},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {"type": {"type": "string"}, "name": {"type": "string"},
                                   "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                   "useCachedMetrics": {"type": "boolean"},
                                   "authenticationRef": {"type": "object", "required": ["name"]},
                                   "metadata": {"type": "object", "additionalProperties": {"type": "string"}}},
                    "if": {"properties": {"type": {"const": "prometheus"}}},
                    "then": {"properties": {"metadata": PROMETHEUS_METADATA}}}},
            },
        },
    },
    "$defs": {"rules": {"type": "object", "additionalProperties": False, "properties": {
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {"type": "array", "items": {"type": "object", "required": ["type", "value", "periodSeconds"]}}}}},
}
