"""Self-hosted options: replicas needed at the peak hour, and what they cost per month on-demand, on spot (with
the interruption overhead) and autoscaled (the one-day simulation x 30).

Sizing: peak arrival rate = mean rate x the curve's peak factor; one replica serves ``requests_per_s`` at
saturation (prefill + decode seconds per request, from the throughput catalogue); run it at ``utilisation`` of that
(the latency headroom: queueing delay grows without bound as utilisation nears 1). Replicas = ceil(peak / (util x
capacity)), at least 1.

Latency target (``--latency-target-s``): a replica running ``c`` requests at once gives each ``decode / c`` tokens/s
(the batch shares the aggregate decode rate), so a request takes ``input / prefill + output x c / decode`` seconds.
The largest ``c`` (at most the row's saturating concurrency) that keeps this within the target bounds the replica's
throughput to ``c / latency(c)`` requests/s (Little's law); the sizing above uses the lower of that and saturation.
A row whose single request (``c = 1``) already misses the target is marked ``meets_latency = False`` and sized at
``c = 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from tokenomy.plan.apis import per_mtok
from tokenomy.plan.autoscale import DayResult, ScalingPolicy, simulate_day
from tokenomy.plan.data import GpuCatalogue, Throughput
from tokenomy.plan.workload import DAYS_PER_MONTH, TrafficCurve, Workload

HOURS_PER_MONTH = 24 * DAYS_PER_MONTH


@dataclass(frozen=True, slots=True)
class SelfHostOption:
    row: Throughput
    capacity_rps: float  # one replica at saturation, for this request shape
    peak_rps: float
    replicas: int
    gpus: int
    on_demand_usd_per_month: Decimal
    spot_usd_per_month: Decimal
    autoscaled_usd_per_month: Decimal  # on-demand prices, autoscaled fleet
    on_demand_usd_per_mtok: Decimal
    spot_usd_per_mtok: Decimal
    autoscaled_usd_per_mtok: Decimal
    day: DayResult
    latency_s: float  # per request at the concurrency the sizing assumes
    meets_latency: bool

    @property
    def gpu_hours_per_day(self) -> float:
        return self.day.replica_hours * self.row.gpus

    @property
    def fixed_gpu_hours_per_day(self) -> float:
        return self.day.fixed_replica_hours * self.row.gpus


def replicas_needed(peak_rps: float, capacity_rps: float, utilisation: float) -> int:
    return max(1, math.ceil(peak_rps / (capacity_rps * utilisation) - 1e-9))


def latency_bound(row: Throughput, input_tokens: int, output_tokens: int,
                  target_s: float | None) -> tuple[float, float, bool]:
    """(requests/s one replica sustains, seconds per request at that load, whether the target is met)."""
    saturated = row.requests_per_s(input_tokens, output_tokens)

    def latency(c: int) -> float:
        return input_tokens / row.prefill_tokens_per_s + output_tokens * c / row.decode_tokens_per_s

    if target_s is None:
        return saturated, latency(row.concurrency), True
    prefill = input_tokens / row.prefill_tokens_per_s
    room = (target_s - prefill) * row.decode_tokens_per_s / max(output_tokens, 1)
    c = min(row.concurrency, math.floor(room))
    if c < 1:
        return min(saturated, 1 / latency(1)), latency(1), False
    return min(saturated, c / latency(c)), latency(c), True


def size_option(row: Throughput, workload: Workload, curve: TrafficCurve, gpus: GpuCatalogue,
                policy: ScalingPolicy) -> SelfHostOption:
    gpu = gpus.gpus[row.gpu]
    capacity, latency_s, meets = latency_bound(row, workload.input_tokens, workload.output_tokens,
                                               policy.latency_target_s)
    peak = workload.mean_requests_per_s * curve.peak_factor
    replicas = replicas_needed(peak, capacity, policy.utilisation)
    n_gpus = replicas * row.gpus
    on_demand = n_gpus * HOURS_PER_MONTH * gpu.on_demand.usd_per_hour
    spot_factor = Decimal(str(1 + gpus.spot_interruption_overhead))
    spot = n_gpus * HOURS_PER_MONTH * gpu.spot.usd_per_hour * spot_factor
    day = simulate_day(workload, curve, capacity, row.concurrency, replicas, policy)
    gpu_hours_month = Decimal(str(round(day.replica_hours * row.gpus, 6))) * DAYS_PER_MONTH
    autoscaled = gpu_hours_month * gpu.on_demand.usd_per_hour
    return SelfHostOption(row, capacity, peak, replicas, n_gpus, on_demand, spot, autoscaled,
                          per_mtok(workload, on_demand), per_mtok(workload, spot), per_mtok(workload, autoscaled),
                          day, latency_s, meets)


def self_host_options(rows: list[Throughput], workload: Workload, curve: TrafficCurve, gpus: GpuCatalogue,
                      policy: ScalingPolicy) -> list[SelfHostOption]:
    return [size_option(row, workload, curve, gpus, policy) for row in rows]
