"""One measured point: run bench/loadgen.py against a service (pinned), and summarise what it and /proc saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import services
from services import Service

MODES = ("plain", "stream")
CONTAMINATED_SHARE = 0.15  # of a core, used by processes outside the benchmark during a point: take it again


class BenchError(RuntimeError):
    """A measurement could not be taken (the load generator failed or hung, a tool is missing)."""


@dataclass(frozen=True)
class Plan:
    point_s: float  # each open-loop point
    max_s: float  # each closed-loop (maximum throughput) point
    loads: tuple[int, ...] = (100, 500, 1000)
    reference_load: int = 500  # where the latency targets apply; the ASGI comparison and drift check run here only
    concurrency: int = 64
    timeout_s: float = 5.0
    loadgen_core: int | None = 0
    gateway_core: int | None = 1


def percentile(sorted_values: list[int], share: float) -> float | None:
    """Nearest-rank percentile of microsecond samples, in ms."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))] / 1000


def summarise(raw: dict[str, Any], server_cpu_s: float, other_cpu_s: float) -> dict[str, Any]:
    """Percentiles in ms from the generator's samples; the server's CPU over the same window; and the CPU that went
    to none of the benchmark's processes (other work on the machine), which makes a point suspect."""
    latency, ttfb, lag = (sorted(raw.pop(key)) for key in ("latency_us", "ttfb_us", "release_lag_us"))
    errors: dict[str, int] = raw.pop("errors")
    done = raw["ok"] + sum(errors.values())
    elapsed = raw["elapsed_s"]
    return {**raw, "errors": sum(errors.values()), "errors_by_kind": errors,
            "p50_ms": percentile(latency, 0.50), "p90_ms": percentile(latency, 0.90),
            "p99_ms": percentile(latency, 0.99), "p999_ms": percentile(latency, 0.999),
            "max_ms": latency[-1] / 1000 if latency else None,
            "ttfb_p50_ms": percentile(ttfb, 0.50), "ttfb_p99_ms": percentile(ttfb, 0.99),
            "release_lag_p50_ms": percentile(lag, 0.50), "release_lag_p99_ms": percentile(lag, 0.99),
            "server_cpu_share": server_cpu_s / elapsed,
            "server_cpu_us_per_request": server_cpu_s / done * 1e6 if done else None,
            "other_cpu_share": other_cpu_s / elapsed}


def run_loadgen(service: Service, plan: Plan, *, upstream: Service | None, stream: bool, rate: int | None = None,
                concurrency: int | None = None, seconds: float, client: str = "raw",
                door: str = "chat") -> dict[str, Any]:
    """One point against ``service``; ``upstream`` is the service behind it (None when it is the upstream).
    ``door``: the API of ``service.chat_url`` (bench/doors.py points it at /v1/messages or /v1/responses)."""
    argv = [sys.executable, str(services.BENCH / "loadgen.py"), "--url", service.chat_url, "--seconds", str(seconds),
            "--timeout", str(plan.timeout_s), "--client", client, "--door", door]
    argv += ["--rate", str(rate)] if rate is not None else ["--concurrency", str(concurrency or plan.concurrency)]
    if stream:
        argv.append("--stream")
    if service.bearer:
        argv += ["--bearer", service.bearer]
    ours = _our_pids(service, upstream)
    cpu0, all0 = service.cpu_s(), services.cpu_by_process()
    try:
        done = subprocess.run(services.pinned(plan.loadgen_core, argv), capture_output=True, text=True,
                              timeout=seconds + plan.timeout_s + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator against {service.name} did not finish in {exc.timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"the load generator against {service.name} failed:\n{done.stderr[-2000:]}")
    server_cpu, other_cpu = service.cpu_s() - cpu0, _other_cpu_s(all0, services.cpu_by_process(), ours)
    return summarise(json.loads(done.stdout), server_cpu, other_cpu)


def _our_pids(service: Service, upstream: Service | None) -> set[int]:
    """This process (the load generator's CPU lands in its cutime when reaped) and the servers' trees."""
    return {os.getpid(), *service.pids(), *(upstream.pids() if upstream else ())}


def _other_cpu_s(before: dict[int, float], after: dict[int, float], ours: set[int]) -> float:
    """CPU seconds that processes outside ``ours`` used between the two snapshots (new processes: all of theirs)."""
    return sum(total - before.get(pid, 0.0) for pid, total in after.items() if pid not in ours)


def wait_for_quiet(service: Service, upstream: Service | None, *, quiet_share: float = 0.10,
                   limit_s: float = 120.0) -> float:
    """Wait (at most ``limit_s``) until processes outside the benchmark use under ``quiet_share`` of a core, so a
    point is not taken while something else (a test run, a build) shares the machine. Returns seconds waited."""
    start = time.monotonic()
    ours = _our_pids(service, upstream)
    while time.monotonic() - start < limit_s:
        before = services.cpu_by_process()
        time.sleep(0.5)
        if _other_cpu_s(before, services.cpu_by_process(), ours) / 0.5 < quiet_share:
            break
    return time.monotonic() - start


def _point(service: Service, plan: Plan, *, upstream: Service | None, stream: bool, rate: int | None,
           tries: int = 3) -> dict[str, Any]:
    """One point, taken again (up to ``tries`` times) when something outside the benchmark took more than
    CONTAMINATED_SHARE of a core while it ran; the last try stands, with how many it took."""
    waited, taken = 0.0, 0
    while True:
        service.settle()  # the target drains any backlog left by the previous point
        waited += wait_for_quiet(service, upstream)
        point = run_loadgen(service, plan, upstream=upstream, stream=stream, rate=rate,
                            seconds=plan.point_s if rate is not None else plan.max_s)
        taken += 1
        if point["other_cpu_share"] <= CONTAMINATED_SHARE or taken >= tries:
            return {**point, "tries": taken, "waited_for_quiet_s": waited}


def measure(service: Service, plan: Plan, *, upstream: Service | None,
            loads: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Open-loop points and the closed-loop maximum for both modes, then the process tree's memory."""
    points: dict[str, Any] = {}
    for mode in MODES:
        stream = mode == "stream"
        run_loadgen(service, plan, upstream=upstream, stream=stream, concurrency=16, seconds=1.0)  # warm-up
        for rate in [*(plan.loads if loads is None else loads), None]:
            key = f"{mode}@{rate or 'max'}"
            points[key] = _point(service, plan, upstream=upstream, stream=stream, rate=rate)
            print(f"  {service.name:>16} {key:>12}: {_line(points[key])}", flush=True)
    processes = service.memory_by_process()
    return {"points": points, "peak_rss_mb": service.memory_mb("VmHWM"), "end_rss_mb": service.memory_mb("VmRSS"),
            "end_pss_mb": sum(p["pss_mb"] for p in processes), "processes": processes}


def _line(point: dict[str, Any]) -> str:
    return (f"{point['achieved_rps']:7.0f} rps, p50 {point['p50_ms'] or 0:7.2f} ms, p99 {point['p99_ms'] or 0:8.2f} ms,"
            f" {point['errors']} errors, server CPU {point['server_cpu_share']:4.0%},"
            f" other CPU {point['other_cpu_share']:4.0%}, try {point['tries']}")
