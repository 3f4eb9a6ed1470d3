"""One day of KEDA autoscaling on queue depth, minute by minute, against a fixed fleet sized for the peak.

The metric is tokenomy's ``tokenomy_deployment_queue_depth`` (requests waiting for or holding a deployment's
capacity). KEDA's Prometheus scaler with ``threshold`` T asks the HPA for ceil(depth / T) replicas; the planner
sets T = ``utilisation`` x the replica's saturating concurrency, so the autoscaler and the sizing agree at steady
state. Modelled as KEDA and the HPA behave by default:

- 0 -> 1 only when depth > ``activation_threshold`` (requests below it wait; with tokenomy in front they can
  spill to an API tier instead: the report counts them);
- scale-up to the desired count at once; a new replica serves after ``startup_s`` (image pull + model load) and is
  paid for from the moment it is requested;
- scale-down follows the highest desired count of the last ``stabilisation_s`` (HPA default 300 s);
- 1 -> 0 once depth has stayed at or below the activation threshold for ``cooldown_s`` (KEDA
  ``cooldownPeriod``, default 300 s), even while a replica still serves a trickle: KEDA's activation decides
  0 <-> 1, the HPA 1 <-> N;
- at most ``max_replicas`` (the fixed fleet's size).

Service is a fluid model: a replica completes ``capacity_rps`` requests per second; what exceeds capacity queues.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tokenomy.plan.workload import TrafficCurve, Workload

STEP_S = 60


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    utilisation: float = 0.7
    latency_target_s: float | None = None  # end-to-end seconds per request a replica must keep (None: no target)
    activation_threshold: int = 5
    cooldown_s: int = 300
    stabilisation_s: int = 300
    startup_s: int = 180
    polling_s: int = 30


@dataclass(frozen=True, slots=True)
class DayResult:
    fixed_replicas: int
    replica_hours: float  # paid replica-hours over the day (starting replicas included)
    fixed_replica_hours: float
    peak_replicas: int
    zero_replica_minutes: int
    waited_requests: float  # arrived while no replica was ready (cold start or below activation)
    max_queue: float
    timeline: tuple[int, ...]  # paid replicas at each minute

    @property
    def saved_fraction(self) -> float:
        return 1 - self.replica_hours / self.fixed_replica_hours


def simulate_day(workload: Workload, curve: TrafficCurve, capacity_rps: float, concurrency: int,
                 max_replicas: int, policy: ScalingPolicy) -> DayResult:
    """``capacity_rps`` and ``concurrency`` are one replica's at saturation."""
    return simulate_rate(lambda hour: curve.requests_per_s(workload, hour), capacity_rps, concurrency,
                         max_replicas, policy)


def simulate_rate(rate: Callable[[float], float], capacity_rps: float, concurrency: float, max_replicas: int,
                  policy: ScalingPolicy) -> DayResult:
    """The same day for any arrival rate (per second, at a fractional UTC hour): ``plan pack`` gives a packed GPU
    the summed work of its models, in replica-seconds per second, against a capacity of 1."""
    threshold = max(1.0, policy.utilisation * concurrency)
    ready, starting = 0, deque[int]()  # starting: minute each pending replica becomes ready
    recent: deque[tuple[int, int]] = deque()  # (minute, desired) within the stabilisation window
    queue = waited = max_queue = 0.0
    last_active = -10**9
    timeline: list[int] = []
    for minute in range(24 * 60):
        while starting and starting[0] <= minute:
            starting.popleft()
            ready += 1
        arrivals = rate((minute + 0.5) / 60) * STEP_S
        capacity = ready * capacity_rps * STEP_S
        served = min(queue + arrivals, capacity)
        if ready == 0:
            waited += arrivals
        queue = queue + arrivals - served
        max_queue = max(max_queue, queue)
        in_service = served / STEP_S / capacity_rps * concurrency if capacity_rps else 0.0
        depth = queue + in_service
        desired = math.ceil(depth / threshold) if depth > 0 else 0
        active = depth > policy.activation_threshold
        if active:
            last_active = minute
        recent.append((minute, desired))
        while recent[0][0] <= minute - policy.stabilisation_s / STEP_S:
            recent.popleft()
        total = ready + len(starting)
        idle_s = (minute - last_active) * STEP_S
        if (total == 0 and not active) or idle_s >= policy.cooldown_s:
            target = 0
        else:
            target = max(1, min(max_replicas, max(d for _, d in recent)))
        if target > total:
            delay = math.ceil(policy.startup_s / STEP_S)
            starting.extend([minute + delay] * (target - total))
        elif target < total:
            drop = total - target
            while drop and starting:
                starting.pop()
                drop -= 1
            ready -= drop
        timeline.append(ready + len(starting))
    replica_hours = sum(timeline) / 60
    return DayResult(max_replicas, replica_hours, max_replicas * 24.0, max(timeline),
                     sum(1 for r in timeline if r == 0), waited, max_queue, tuple(timeline))
