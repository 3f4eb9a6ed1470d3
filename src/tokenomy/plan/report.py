"""The whole plan: API options, self-hosted options, autoscaling, the seed's claims; and its JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.plan.apis import ApiOption, api_options, planner_catalogue
from tokenomy.plan.autoscale import ScalingPolicy
from tokenomy.plan.claims import Claim, check_claims
from tokenomy.plan.data import GpuCatalogue, load_gpus, load_throughput
from tokenomy.plan.selfhost import SelfHostOption, self_host_options
from tokenomy.plan.workload import DAYS_PER_MONTH, TrafficCurve, Workload


@dataclass(frozen=True, slots=True)
class PlanInputs:
    workload: Workload
    curve: TrafficCurve
    policy: ScalingPolicy
    at: datetime
    gpus_file: Path | None = None
    throughput_file: Path | None = None
    prices_override: Path | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    inputs: PlanInputs
    gpus: GpuCatalogue
    apis: list[ApiOption]
    self_hosted: list[SelfHostOption]
    claims: list[Claim]

    def cheapest_self_hosted(self) -> SelfHostOption:
        return min(self.self_hosted, key=lambda o: o.autoscaled_usd_per_month)


def build_plan(inputs: PlanInputs) -> Plan:
    gpus = load_gpus(inputs.gpus_file)
    rows = load_throughput(inputs.throughput_file, gpus)
    catalogue = planner_catalogue(inputs.prices_override)
    return Plan(inputs, gpus, api_options(catalogue, inputs.workload, inputs.at),
                self_host_options(rows, inputs.workload, inputs.curve, gpus, inputs.policy),
                check_claims(catalogue, rows, gpus, inputs.at, inputs.policy.utilisation))


def _usd(value: Decimal) -> float:
    return float(round(value, 2))


def _mtok(value: Decimal) -> float:
    return float(round(value, 4))


def _api(option: ApiOption) -> dict[str, Any]:
    return {"tier": option.tier, "model": option.model, "input_usd_per_mtok": float(option.input_usd_per_mtok),
            "output_usd_per_mtok": float(option.output_usd_per_mtok), "usd_per_month": _usd(option.usd_per_month),
            "usd_per_mtok": _mtok(option.usd_per_mtok), "source": option.source}


def _self_hosted(option: SelfHostOption) -> dict[str, Any]:
    row, day = option.row, option.day
    return {
        "model_size": row.model_size, "example_model": row.example_model, "precision": row.precision,
        "gpu": row.gpu, "gpus_per_replica": row.gpus, "estimate": row.estimate, "source": row.source,
        "replica_requests_per_s": round(option.capacity_rps, 3), "peak_requests_per_s": round(option.peak_rps, 3),
        "replicas": option.replicas, "gpus": option.gpus,
        "latency_s": round(option.latency_s, 2), "meets_latency_target": option.meets_latency,
        "on_demand": {"usd_per_month": _usd(option.on_demand_usd_per_month),
                      "usd_per_mtok": _mtok(option.on_demand_usd_per_mtok)},
        "spot": {"usd_per_month": _usd(option.spot_usd_per_month), "usd_per_mtok": _mtok(option.spot_usd_per_mtok)},
        "autoscaled": {
            "usd_per_month": _usd(option.autoscaled_usd_per_month),
            "usd_per_mtok": _mtok(option.autoscaled_usd_per_mtok),
            "gpu_hours_per_day": round(option.gpu_hours_per_day, 2),
            "fixed_gpu_hours_per_day": round(option.fixed_gpu_hours_per_day, 2),
            "usd_saved_per_month": _usd(option.on_demand_usd_per_month - option.autoscaled_usd_per_month),
            "zero_replica_minutes": day.zero_replica_minutes, "peak_replicas": day.peak_replicas,
            "requests_waiting_for_a_replica_per_day": round(day.waited_requests, 1),
            "max_queue": round(day.max_queue, 1),
        },
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    inputs, w, policy = plan.inputs, plan.inputs.workload, plan.inputs.policy
    return {
        "workload": {"queries_per_day": w.queries_per_day, "input_tokens": w.input_tokens,
                     "output_tokens": w.output_tokens, "days_per_month": DAYS_PER_MONTH,
                     "tokens_per_month": w.tokens_per_month, "mean_requests_per_s": round(w.mean_requests_per_s, 4)},
        "traffic": {"curve": inputs.curve.name, "peak_factor": round(inputs.curve.peak_factor, 3),
                    "hourly_relative": [round(h, 3) for h in inputs.curve.hourly]},
        "assumptions": {
            "utilisation_target": policy.utilisation, "latency_target_s": policy.latency_target_s,
            "activation_threshold": policy.activation_threshold,
            "cooldown_s": policy.cooldown_s, "stabilisation_s": policy.stabilisation_s,
            "startup_s": policy.startup_s, "spot_interruption_overhead": plan.gpus.spot_interruption_overhead,
            "spot_interruption_overhead_source": plan.gpus.overhead_source, "prices_at": inputs.at.date().isoformat(),
            "gpu_prices": {g.name: {"on_demand_usd_per_hour": float(g.on_demand.usd_per_hour),
                                    "spot_usd_per_hour": float(g.spot.usd_per_hour),
                                    "on_demand_source": g.on_demand.source, "spot_source": g.spot.source}
                           for g in plan.gpus.gpus.values()},
        },
        "apis": [_api(o) for o in plan.apis],
        "self_hosted": [_self_hosted(o) for o in plan.self_hosted],
        "claims": [{"claim": c.claim, "holds": c.holds, "status": c.kind, "verdict": c.verdict,
                    "computed": c.computed} for c in plan.claims],
    }
