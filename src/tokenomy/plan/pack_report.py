"""The JSON document of ``tokenomy plan pack``: ``{"unpacked": {...}, "packed": {...}, "placement": [...]}`` plus
the workloads and the assumptions each figure rests on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tokenomy.plan.autoscale import ScalingPolicy
from tokenomy.plan.pack import Fleet, PackResult, Placement, gpus_saved, utilisation_claim
from tokenomy.plan.serving import ServingCatalogue


def _usd(value: Decimal) -> float:
    return float(round(value, 2))


def _fleet(fleet: Fleet) -> dict[str, Any]:
    return {"gpus": fleet.gpus,
            "utilisation": {"mean": round(fleet.utilisation_mean, 4), "peak": round(fleet.utilisation_peak, 4)},
            "usd_per_month": {"on_demand": _usd(fleet.on_demand_usd_per_month),
                              "spot": _usd(fleet.spot_usd_per_month),
                              "autoscaled": _usd(fleet.autoscaled_usd_per_month)},
            "gpu_hours_per_day_autoscaled": round(fleet.gpu_hours_per_day_autoscaled, 2)}


def _placement(p: Placement, index: int, gpu: str) -> dict[str, Any]:
    load = p.load()
    return {
        "group": index, "gpu": gpu, "gpus_per_replica": p.engines[0].row.gpus, "replicas": p.replicas,
        "gpus": p.gpus, "shared": len(p.engines) > 1, "efficiency": p.efficiency,
        "load_replicas": {"mean": round(sum(load) / 24, 4), "peak": round(max(load), 4)},
        "memory_gb_per_gpu": round(p.memory_gb, 2),
        "engines": [{"model": e.model, "model_size": e.row.model_size, "precision": e.row.precision,
                     "adapters": e.adapters, "workloads": [m.workload.name for m in e.members],
                     "served_models": [m.workload.served_name for m in e.members], "memory_gb": e.memory,
                     "concurrency": e.row.concurrency}
                    for e in p.engines],
    }


def pack_document(result: PackResult, serving: ServingCatalogue, policy: ScalingPolicy) -> dict[str, Any]:
    return {
        "gpu": result.gpu,
        "unpacked": _fleet(result.unpacked),
        "packed": _fleet(result.packed),
        "placement": [_placement(p, i, result.gpu) for i, p in enumerate(result.placements)],
        "gpus_saved": gpus_saved(result),
        "utilisation_claim": {"claim": "serving several models or LoRA adapters on the same GPUs takes a fleet "
                                       "from 15-30 % to 60-80 % utilisation", "verdict": utilisation_claim(result)},
        "workloads": [{"name": m.workload.name, "served_model": m.workload.served_name, "model": m.workload.model,
                       "adapter": m.workload.adapter, "model_size": m.row.model_size, "precision": m.row.precision,
                       "queries_per_day": m.workload.workload.queries_per_day,
                       "input_tokens": m.workload.workload.input_tokens,
                       "output_tokens": m.workload.workload.output_tokens, "curve": m.workload.curve.name,
                       "peak_load_replicas": round(max(m.work), 4),
                       "unpacked_replicas": result.unpacked_replicas[m.workload.name],
                       "throughput_estimate": m.row.estimate, "throughput_source": m.row.source}
                      for m in result.members],
        "assumptions": {
            "utilisation_target": policy.utilisation,
            "memory_capacity_gb_per_gpu": round(result.memory_capacity_gb, 2),
            **{name: {"value": f.value, "estimate": f.estimate, "source": f.source}
               for name, f in serving.engine.items()},
        },
    }
