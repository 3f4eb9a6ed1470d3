"""The planner's arithmetic: API costs from the catalogue, the seed's claims, sizing, the autoscaling day."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tokenomy.errors import PlanDataError
from tokenomy.plan.apis import api_options, monthly_usd, planner_catalogue
from tokenomy.plan.autoscale import ScalingPolicy, simulate_day
from tokenomy.plan.claims import gpt4_turbo_claim, llama8b_h100_claim
from tokenomy.plan.data import load_gpus, load_throughput
from tokenomy.plan.selfhost import replicas_needed, size_option
from tokenomy.plan.workload import CURVES, DIURNAL, TrafficCurve, Workload

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SEED = Workload(100_000, 1_500, 500)


@pytest.fixture(scope="module")
def gpus():  # type: ignore[no-untyped-def]
    return load_gpus()


@pytest.fixture(scope="module")
def rows(gpus):  # type: ignore[no-untyped-def]
    return load_throughput(None, gpus)


def test_gpt4_turbo_costs_90000_a_month_from_the_catalogue() -> None:
    catalogue = planner_catalogue()
    price = catalogue.price_for("gpt-4-turbo", NOW)
    assert (price.input, price.output) == (Decimal(10), Decimal(30))
    assert monthly_usd(SEED, price.input, price.output) == Decimal(90_000)
    claim = gpt4_turbo_claim(catalogue, NOW)
    assert claim.holds and claim.computed["usd_per_month"] == 90_000.0


def test_api_options_price_the_workload_and_batch_is_half(gpus) -> None:  # type: ignore[no-untyped-def]
    options = {(o.tier, o.model): o for o in api_options(planner_catalogue(), SEED, NOW)}
    turbo, batch = options[("frontier", "openai/gpt-4-turbo")], options[("frontier batch", "openai/gpt-4-turbo")]
    assert turbo.usd_per_mtok == Decimal(15)  # 90,000 / 6,000M tokens
    assert batch.usd_per_month * 2 == turbo.usd_per_month
    assert ("mid", "openai/gpt-4o-mini") in options
    assert ("mid batch", "deepseek/deepseek-chat") not in options  # no batch API: no batch row


def test_200_rps_on_one_h100_holds_only_for_short_requests(rows) -> None:  # type: ignore[no-untyped-def]
    claim = llama8b_h100_claim(rows)
    assert not claim.holds and claim.verdict.startswith("holds only for short requests")
    max_tokens = int(claim.computed["max_request_tokens_at_200_rps"])
    assert 20 < max_tokens < 2_000
    row = next(r for r in rows if (r.model_size, r.gpu, r.precision, r.gpus) == ("8B", "H100", "fp16", 1))
    # at the claimed size the replica reaches ~200 req/s; at four times the size it does not
    assert row.requests_per_s(max_tokens * 3 // 4, max_tokens // 4) == pytest.approx(200, rel=0.05)
    assert row.requests_per_s(max_tokens * 3, max_tokens) < 60
    assert claim.computed["req_per_s_at_1500_in_500_out"] < 20


def test_sizing_is_monotonic_in_traffic(gpus, rows) -> None:  # type: ignore[no-untyped-def]
    curve = TrafficCurve.of("diurnal", DIURNAL)
    for row in rows:
        sizes = [size_option(row, Workload(q, 1500, 500), curve, gpus, ScalingPolicy()).replicas
                 for q in (1_000, 10_000, 100_000, 1_000_000)]
        assert sizes == sorted(sizes), (row, sizes)
        assert sizes[-1] > sizes[0]


def test_latency_target_bounds_batching_and_adds_replicas(gpus, rows) -> None:  # type: ignore[no-untyped-def]
    curve = TrafficCurve.of("diurnal", DIURNAL)
    workload = Workload(1_000_000, 1500, 500)
    for row in rows:
        free = size_option(row, workload, curve, gpus, ScalingPolicy())
        replicas = [free.replicas]
        for target in (60.0, 20.0, 8.0):
            option = size_option(row, workload, curve, gpus, ScalingPolicy(latency_target_s=target))
            replicas.append(option.replicas)
            if option.meets_latency:
                assert option.latency_s <= target + 1e-9
                assert option.capacity_rps <= free.capacity_rps + 1e-9
        assert replicas == sorted(replicas), (row, replicas)  # a tighter target never needs fewer replicas
        impossible = size_option(row, workload, curve, gpus, ScalingPolicy(latency_target_s=0.001))
        assert not impossible.meets_latency and impossible.latency_s > 0.001


def test_replicas_needed_meets_the_utilisation_target() -> None:
    assert replicas_needed(10.0, 5.0, 1.0) == 2
    assert replicas_needed(10.0, 5.0, 0.5) == 4
    assert replicas_needed(0.001, 5.0, 0.7) == 1


@pytest.mark.parametrize("curve_name", sorted(CURVES))
@pytest.mark.parametrize("queries", [2_000, 100_000, 3_000_000])
def test_autoscaling_never_uses_more_than_the_fixed_fleet(gpus, rows, curve_name: str,  # type: ignore[no-untyped-def]
                                                          queries: int) -> None:
    curve = TrafficCurve.of(curve_name, CURVES[curve_name])
    for row in rows[:6]:
        option = size_option(row, Workload(queries, 1500, 500), curve, gpus, ScalingPolicy())
        assert option.day.replica_hours <= option.day.fixed_replica_hours + 1e-9
        assert option.autoscaled_usd_per_month <= option.on_demand_usd_per_month
        assert max(option.day.timeline) <= option.replicas


def test_autoscaling_scales_to_zero_off_peak_and_up_at_the_peak(rows) -> None:  # type: ignore[no-untyped-def]
    row = next(r for r in rows if (r.model_size, r.gpu, r.precision) == ("8B", "L4", "fp16"))
    workload = Workload(200_000, 1500, 500)
    curve = TrafficCurve.of("office-hours", CURVES["office-hours"])
    fixed = replicas_needed(workload.mean_requests_per_s * curve.peak_factor,
                            row.requests_per_s(1500, 500), 0.7)
    day = simulate_day(workload, curve, row.requests_per_s(1500, 500), row.concurrency, fixed, ScalingPolicy())
    timeline = day.timeline
    assert all(r == 0 for r in timeline[: 7 * 60]) and all(r == 0 for r in timeline[19 * 60:])  # night
    assert max(timeline[10 * 60: 16 * 60]) == fixed > 1  # working hours: the full fleet
    assert day.zero_replica_minutes >= 12 * 60
    assert day.saved_fraction > 0.4
    assert day.waited_requests > 0  # the 08:00 cold start is reported, not hidden


def test_peak_factor_reshapes_the_curve_and_rejects_impossible_peaks() -> None:
    curve = TrafficCurve.of("diurnal", DIURNAL)
    assert sum(curve.hourly) / 24 == pytest.approx(1)
    flatter = curve.with_peak_factor(1.5)
    assert flatter.peak_factor == pytest.approx(1.5) and sum(flatter.hourly) / 24 == pytest.approx(1)
    with pytest.raises(PlanDataError, match="peak-factor"):
        curve.with_peak_factor(9.0)


def test_workload_rejects_nonsense() -> None:
    with pytest.raises(PlanDataError, match="queries_per_day"):
        Workload(-1, 10, 10)
    with pytest.raises(PlanDataError, match="nothing to plan"):
        Workload(100, 0, 0)
