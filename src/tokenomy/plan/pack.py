"""``plan pack``: several models (and LoRA adapters of a base) on shared GPUs, against one model per replica.

Work is measured in replica-seconds: a request of ``input`` + ``output`` tokens occupies one replica of its
throughput row for ``input / prefill + output / decode`` seconds, so a workload's *load* at an hour is its arrival
rate x that time (1.0 = one replica saturated). Loads are evaluated at the 24 hour midpoints, where the
piecewise-linear traffic curves have their corners, so a sum's maximum there is its maximum over the day.

- **Unpacked** (today's plan): every workload on replicas of its own, ``ceil(peak / utilisation)`` of them; an
  adapter is served as a merged fine-tune at the base's speed.
- **Packed**: a base model and its adapters form one *engine* (one vLLM process, ``--enable-lora``; every request
  on a LoRA-enabled engine runs at ``lora_efficiency`` of the base's speed). An engine whose peak load needs more
  than one replica keeps replicas of its own. The rest (single-GPU rows) are placed first-fit, largest peak first,
  on GPUs where (a) the *summed hourly* load, divided by ``colocation_efficiency`` when two or more engines
  time-slice the GPU, stays within the utilisation target at every hour (peaks of different curves may
  interleave) and (b) the engines' memory fits (weights + adapters + KV cache for the requests each has in flight
  at its peak + per-process overhead, within ``gpu_memory_utilization``).

Utilisation is the GPU-time the traffic needs at the catalogue's speed over the GPU-time paid for (penalties are
paid for, not counted as work); reported as the daily mean and at the busiest hour. Costs as ``plan``: on-demand,
spot (+ interruption overhead) and autoscaled (KEDA on the summed queue depth; a packed GPU scales as one unit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tokenomy.errors import PlanDataError
from tokenomy.plan.autoscale import ScalingPolicy, simulate_day, simulate_rate
from tokenomy.plan.data import GpuCatalogue, Throughput
from tokenomy.plan.pack_input import PackFile, PackWorkload
from tokenomy.plan.selfhost import HOURS_PER_MONTH, replicas_needed
from tokenomy.plan.serving import ServingCatalogue
from tokenomy.plan.workload import DAYS_PER_MONTH

HOURS = tuple(h + 0.5 for h in range(24))


@dataclass(frozen=True, slots=True)
class Member:
    """One workload as served: its throughput row and its hourly load in replicas (at the speed it runs at)."""

    workload: PackWorkload
    row: Throughput
    seconds: float  # replica-seconds per request where it is served (the catalogue's / the engine's efficiency)
    load: tuple[float, ...]
    work: tuple[float, ...]  # the same at the catalogue's speed: what utilisation counts

    @property
    def peak(self) -> float:
        return max(self.load)


@dataclass
class Engine:
    """One model server: a base model and the adapters it serves."""

    model: str
    row: Throughput
    members: list[Member]
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def load(self) -> tuple[float, ...]:
        return tuple(map(sum, zip(*(m.load for m in self.members), strict=True)))

    @property
    def adapters(self) -> list[str]:
        return [m.workload.adapter for m in self.members if m.workload.adapter]


@dataclass
class Placement:
    """A GPU group (``gpus`` accelerators, ``replicas`` copies) and the engines on it."""

    engines: list[Engine]
    replicas: int
    efficiency: float = 1.0

    @property
    def gpus(self) -> int:
        return self.engines[0].row.gpus * self.replicas

    def load(self, extra: Engine | None = None) -> tuple[float, ...]:
        engines = [*self.engines, *([extra] if extra else [])]
        return tuple(map(sum, zip(*(e.load for e in engines), strict=True)))

    @property
    def memory_gb(self) -> float:
        return sum(e.memory["total"] for e in self.engines)


@dataclass(frozen=True, slots=True)
class Fleet:
    gpus: int
    utilisation_mean: float
    utilisation_peak: float
    on_demand_usd_per_month: Decimal
    spot_usd_per_month: Decimal
    autoscaled_usd_per_month: Decimal
    gpu_hours_per_day_autoscaled: float


@dataclass(frozen=True, slots=True)
class PackResult:
    gpu: str
    members: list[Member]
    unpacked_replicas: dict[str, int]
    unpacked: Fleet
    packed: Fleet
    placements: list[Placement]
    memory_capacity_gb: float


def throughput_row(rows: list[Throughput], w: PackWorkload, gpu: str) -> Throughput:
    found = [r for r in rows if (r.model_size, r.precision, r.gpu) == (w.model_size, w.precision, gpu)]
    if not found:
        raise PlanDataError(f"workload {w.name!r}: no throughput row for {w.model_size} {w.precision} on {gpu} "
                            "(`tokenomy plan --json` lists the rows; --throughput FILE adds your own)")
    return min(found, key=lambda r: r.gpus)


def _member(w: PackWorkload, row: Throughput, efficiency: float) -> Member:
    seconds = row.seconds_per_request(w.workload.input_tokens, w.workload.output_tokens)
    work = tuple(w.requests_per_s(h) * seconds for h in HOURS)
    return Member(w, row, seconds / efficiency, tuple(x / efficiency for x in work), work)


def _engines(pack: PackFile, rows: list[Throughput], serving: ServingCatalogue) -> list[Engine]:
    lora = serving.figure("lora_efficiency")
    by_model: dict[str, list[PackWorkload]] = {}
    for w in pack.workloads:
        by_model.setdefault(w.model, []).append(w)
    engines = []
    for model, group in by_model.items():
        row = throughput_row(rows, group[0], pack.gpu)
        efficiency = lora if any(w.adapter for w in group) else 1.0
        engine = Engine(model, row, [_member(w, row, efficiency) for w in group])
        engine.memory = _memory(engine, serving)
        engines.append(engine)
    return engines


def _memory(engine: Engine, serving: ServingCatalogue, replicas: int = 1) -> dict[str, float]:
    """GB per GPU of one replica: weights and adapters split over tensor-parallel GPUs, the KV cache for the
    requests in flight at each member's peak (Little's law at saturation: the row's concurrency x the share of a
    replica the member keeps busy, spread over ``replicas``), and the process overhead."""
    row, size = engine.row, engine.row.model_size
    rank = int(serving.figure("default_lora_rank"))
    adapters = sum(serving.adapter_gb(size, m.workload.lora_rank or rank) for m in engine.members
                   if m.workload.adapter)
    kv = sum(max(1.0, row.concurrency * m.peak / replicas) * (m.workload.workload.input_tokens
                                                                + m.workload.workload.output_tokens)
             for m in engine.members) * serving.kv_gb_per_token(size)
    parts = {"weights": serving.weights_gb(size, row.precision) / row.gpus, "adapters": adapters / row.gpus,
             "kv_cache": kv / row.gpus, "overhead": serving.figure("process_overhead_gb")}
    return {**{k: round(v, 2) for k, v in parts.items()}, "total": round(sum(parts.values()), 2)}


def _place(engines: list[Engine], utilisation: float, capacity_gb: float, serving: ServingCatalogue) -> list[Placement]:
    colocation = serving.figure("colocation_efficiency")
    placements: list[Placement] = []
    shareable: list[Engine] = []
    for engine in engines:
        peak = max(engine.load)
        if engine.row.gpus > 1 or peak > utilisation:
            replicas = replicas_needed(peak, 1.0, utilisation)
            engine.memory = _memory(engine, serving, replicas)
            placements.append(Placement([engine], replicas))
        else:
            shareable.append(engine)
    shared: list[Placement] = []
    for engine in sorted(shareable, key=lambda e: (max(e.load), e.memory["total"]), reverse=True):
        for p in shared:
            if (max(p.load(engine)) <= utilisation * colocation + 1e-9
                    and p.memory_gb + engine.memory["total"] <= capacity_gb + 1e-9):
                p.engines.append(engine)
                p.efficiency = colocation
                break
        else:
            shared.append(Placement([engine], 1))
    return placements + shared


def _fleet(gpus: int, work_gpus: tuple[float, ...], gpu_hours_day: float, pack: PackFile,
           catalogue: GpuCatalogue) -> Fleet:
    price = catalogue.gpus[pack.gpu]
    overhead = Decimal(str(1 + catalogue.spot_interruption_overhead))
    return Fleet(gpus, sum(work_gpus) / 24 / gpus, max(work_gpus) / gpus,
                 gpus * HOURS_PER_MONTH * price.on_demand.usd_per_hour,
                 gpus * HOURS_PER_MONTH * price.spot.usd_per_hour * overhead,
                 Decimal(str(round(gpu_hours_day, 6))) * DAYS_PER_MONTH * price.on_demand.usd_per_hour,
                 gpu_hours_day)


def pack_workloads(pack: PackFile, rows: list[Throughput], catalogue: GpuCatalogue, serving: ServingCatalogue,
                   policy: ScalingPolicy) -> PackResult:
    if pack.gpu not in catalogue.gpus:
        raise PlanDataError(f"gpu {pack.gpu!r} has no price (known: {', '.join(sorted(catalogue.gpus))})")
    util = policy.utilisation
    capacity = catalogue.gpus[pack.gpu].memory_gb * serving.figure("gpu_memory_utilization")
    merged = [_member(w, throughput_row(rows, w, pack.gpu), 1.0) for w in pack.workloads]
    work = tuple(sum(m.work[h] * m.row.gpus for m in merged) for h in range(24))
    # unpacked: each workload on replicas of its own
    replicas, hours = {}, 0.0
    for m in merged:
        w, row = m.workload, m.row
        rps = row.requests_per_s(w.workload.input_tokens, w.workload.output_tokens)
        replicas[w.name] = replicas_needed(w.workload.mean_requests_per_s * w.curve.peak_factor, rps, util)
        day = simulate_day(w.workload, w.curve, rps, row.concurrency, replicas[w.name], policy)
        hours += day.replica_hours * row.gpus
    unpacked_gpus = sum(replicas[m.workload.name] * m.row.gpus for m in merged)
    unpacked = _fleet(unpacked_gpus, work, hours, pack, catalogue)
    # packed: engines (a base and its adapters), co-located where load and memory allow
    placements = _place(_engines(pack, rows, serving), util, capacity, serving)
    hours = 0.0
    for p in placements:
        members = [m for e in p.engines for m in e.members]

        def rate(hour: float, members: list[Member] = members, eff: float = p.efficiency) -> float:
            return sum(m.seconds * m.workload.requests_per_s(hour) for m in members) / eff

        concurrency = max(e.row.concurrency for e in p.engines)
        hours += simulate_rate(rate, 1.0, concurrency, p.replicas, policy).replica_hours * p.engines[0].row.gpus
    packed = _fleet(sum(p.gpus for p in placements), work, hours, pack, catalogue)
    return PackResult(pack.gpu, merged, replicas, unpacked, packed, placements, capacity)


def gpus_saved(result: PackResult) -> int:
    return result.unpacked.gpus - result.packed.gpus


def utilisation_claim(result: PackResult) -> str:
    """Whether this example shows the 15-30 % -> 60-80 % utilisation claim, in words."""
    before, after = result.unpacked, result.packed
    span = (f"unpacked {before.utilisation_mean:.0%} mean / {before.utilisation_peak:.0%} at peak on {before.gpus} "
            f"GPUs; packed {after.utilisation_mean:.0%} / {after.utilisation_peak:.0%} on {after.gpus}")
    if after.gpus == before.gpus:
        return f"does not hold here: packing frees no GPU ({span})"
    if after.utilisation_mean >= 0.6:
        return f"holds for the daily mean ({span})"
    if after.utilisation_peak >= 0.6:
        return f"holds at the busiest hour only ({span})"
    return f"packing saves {gpus_saved(result)} GPU(s) but utilisation stays below 60 % ({span})"
