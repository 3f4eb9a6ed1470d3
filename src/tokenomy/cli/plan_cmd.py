"""``tokenomy plan``: what the workload costs on API tiers and self-hosted GPUs, sized and autoscaled.
``tokenomy plan manifests --out DIR``: KEDA ScaledObject + Deployment/Service for a vLLM tier and for tokenomy.

The workload is ``--queries-per-day N --input-tokens I --output-tokens O`` or ``--from-audit FILE.json`` (schema in
``tokenomy.plan.workload``). See docs/plan.md for the assumptions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tokenomy.config.settings import data_home, load_settings
from tokenomy.errors import PlanDataError
from tokenomy.plan.autoscale import ScalingPolicy
from tokenomy.plan.data import load_gpus, load_throughput
from tokenomy.plan.manifests import PROMETHEUS_URL, ManifestSpec, write_manifests
from tokenomy.plan.report import Plan, PlanInputs, build_plan, plan_document
from tokenomy.plan.selfhost import size_option
from tokenomy.plan.workload import CURVES, TrafficCurve, Workload, read_audit
from tokenomy.pricing.catalogue import OVERRIDE_FILENAME

_file = click.Path(dir_okay=False, path_type=Path)


def _workload(ctx: click.Context) -> tuple[Workload, TrafficCurve] | None:
    o = ctx.obj
    numbers = [o["queries_per_day"], o["input_tokens"], o["output_tokens"]]
    curve_name = o["curve"]
    if o["from_audit"] is not None:
        if any(n is not None for n in numbers):
            raise PlanDataError("give either --from-audit or --queries-per-day/--input-tokens/--output-tokens")
        workload, audit_curve = read_audit(o["from_audit"])
        curve = audit_curve if audit_curve and curve_name is None else None
    elif all(n is None for n in numbers):
        return None
    elif any(n is None for n in numbers):
        raise PlanDataError("--queries-per-day, --input-tokens and --output-tokens go together (or use --from-audit)")
    else:
        workload, curve = Workload(*numbers), None
    curve = curve or TrafficCurve.of(curve_name or "diurnal", CURVES[curve_name or "diurnal"])
    if o["peak_factor"] is not None:
        curve = curve.with_peak_factor(o["peak_factor"])
    return workload, curve


def policy_from(ctx: click.Context) -> ScalingPolicy:
    """The scaling policy from the plan group's options (also ``plan pack``'s)."""
    o = ctx.obj
    if not 0 < o["utilisation"] <= 1:
        raise PlanDataError(f"--utilisation must be in (0, 1], got {o['utilisation']}")
    for key in ("activation_threshold", "cooldown", "startup"):
        if o[key] < 0:
            raise PlanDataError(f"--{key.replace('_', '-')} must be >= 0, got {o[key]}")
    if o["latency_target_s"] is not None and o["latency_target_s"] <= 0:
        raise PlanDataError(f"--latency-target-s must be > 0, got {o['latency_target_s']}")
    return ScalingPolicy(utilisation=o["utilisation"], latency_target_s=o["latency_target_s"],
                         activation_threshold=o["activation_threshold"],
                         cooldown_s=o["cooldown"], startup_s=o["startup"])


@click.group("plan", invoke_without_command=True)
@click.option("--from-audit", type=_file, help="Audit summary JSON: queries_per_day, input_tokens, output_tokens.")
@click.option("--queries-per-day", type=int, help="Queries per day.")
@click.option("--input-tokens", type=int, help="Mean input (prompt) tokens per query.")
@click.option("--output-tokens", type=int, help="Mean output tokens per query.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--gpus", "gpus_file", type=_file, help="GPU price file (default: the packaged gpus.json).")
@click.option("--throughput", "throughput_file", type=_file, help="Throughput file (default: packaged).")
@click.option("--curve", type=click.Choice(sorted(CURVES)), help="Traffic by hour of day [default: diurnal].")
@click.option("--peak-factor", type=float, help="Reshape the curve so its peak is this x the mean rate.")
@click.option("--utilisation", type=float, default=0.7, show_default=True,
              help="Target share of a replica's saturated throughput (latency headroom).")
@click.option("--latency-target-s", type=float,
              help="Seconds per request a replica must keep; bounds how many requests it batches (see docs/plan.md).")
@click.option("--activation-threshold", type=int, default=5, show_default=True,
              help="KEDA: queue depth above which 0 -> 1 replica.")
@click.option("--cooldown", type=int, default=300, show_default=True, help="KEDA cooldownPeriod, seconds.")
@click.option("--startup", type=int, default=180, show_default=True, help="Seconds for a new replica to serve.")
@click.option("--config", "config_path", type=_file, help="YAML config file (for the price override file).")
@click.option("--wide", is_flag=True, help="Every column of the self-hosted table, whatever the terminal's width.")
@click.pass_context
def plan_group(ctx: click.Context, /, **options: Any) -> None:
    """Compare API tiers with self-hosted GPUs for a workload; size and autoscale the self-hosted tier."""
    ctx.ensure_object(dict)
    ctx.obj.update(options)
    if ctx.invoked_subcommand is not None:
        return
    found = _workload(ctx)
    if found is None:
        raise PlanDataError("give --queries-per-day N --input-tokens I --output-tokens O, or --from-audit FILE.json")
    workload, curve = found
    override = data_home(load_settings(options["config_path"])) / OVERRIDE_FILENAME
    plan = build_plan(PlanInputs(workload, curve, policy_from(ctx), datetime.now(UTC), options["gpus_file"],
                                 options["throughput_file"], override))
    if options["as_json"]:
        click.echo(json.dumps(plan_document(plan)))
    else:
        _render(plan, options["wide"])


def _render(plan: Plan, wide: bool) -> None:
    """80 columns hold the API table and the self-hosted costs per month; throughput, GPU-hours and $/1M come with
    --wide (or on a terminal of 150 columns)."""
    from tokenomy.cli.terminal import name_column, number_column, out_console, table, wide_enough

    console = out_console(wide)
    every = wide_enough(console, wide, 150)
    doc = plan_document(plan)
    w, t, a = doc["workload"], doc["traffic"], doc["assumptions"]
    console.print(f"[bold]Workload[/]: {w['queries_per_day']:,} queries/day x ({w['input_tokens']:,} in + "
                  f"{w['output_tokens']:,} out) tokens = {w['tokens_per_month'] / 1e6:,.0f}M tokens/month "
                  f"(30 days); curve {t['curve']}, peak {t['peak_factor']:.2f}x mean "
                  f"({w['mean_requests_per_s']:.2f} req/s mean)")
    apis = table("API tiers (price catalogue)")
    for col in ("tier", "model", "$ in/out per 1M", "$/month", "$/1M tok"):
        (number_column if "$" in col else name_column)(apis, col)
    for o in doc["apis"]:
        apis.add_row(o["tier"], o["model"], f"{o['input_usd_per_mtok']:g} / {o['output_usd_per_mtok']:g}",
                     f"{o['usd_per_month']:,.0f}", f"{o['usd_per_mtok']:.3f}")
    console.print(apis)
    hosted = table(f"Self-hosted (vLLM), sized at {a['utilisation_target']:.0%} utilisation of peak; spot "
                   f"+{a['spot_interruption_overhead']:.0%} interruption overhead; autoscaled = KEDA on queue depth, "
                   f"on-demand prices" + ("" if every else " (--wide: throughput, GPU-hours, $/1M, estimates)"))
    columns = ["model", "prec", "GPU", "req/s/replica", "GPUs", "on-demand $/mo", "spot $/mo", "autoscaled $/mo",
               "GPU-h/day auto / fixed", "$/1M od / spot / auto", "estimated"]
    if not every:
        columns = [c for c in columns if c not in ("req/s/replica", "GPU-h/day auto / fixed", "$/1M od / spot / auto",
                                                   "estimated")]
    for col in columns:
        (name_column if col in ("model", "prec", "GPU", "estimated") else number_column)(hosted, col)
    for o in doc["self_hosted"]:
        auto = o["autoscaled"]
        cells = {"model": o["model_size"], "prec": o["precision"], "GPU": f"{o['gpus_per_replica']}x {o['gpu']}",
                 "req/s/replica": f"{o['replica_requests_per_s']:.2f}", "GPUs": str(o["gpus"]),
                 "on-demand $/mo": f"{o['on_demand']['usd_per_month']:,.0f}",
                 "spot $/mo": f"{o['spot']['usd_per_month']:,.0f}", "autoscaled $/mo": f"{auto['usd_per_month']:,.0f}",
                 "GPU-h/day auto / fixed": f"{auto['gpu_hours_per_day']:.1f} / {auto['fixed_gpu_hours_per_day']:.0f}",
                 "$/1M od / spot / auto": f"{o['on_demand']['usd_per_mtok']:.3f} / {o['spot']['usd_per_mtok']:.3f} / "
                                          f"{auto['usd_per_mtok']:.3f}",
                 "estimated": "all" if o["estimate"] else "prefill"}
        hosted.add_row(*(cells[c] for c in columns))
    console.print(hosted)
    target = plan.inputs.policy.latency_target_s
    if target is not None:
        missing = [f"{o.row.model_size} {o.row.precision} {o.row.gpus}x {o.row.gpu} ({o.latency_s:.1f} s)"
                   for o in plan.self_hosted if not o.meets_latency]
        console.print(f"latency target {target:g} s per request bounds each replica's batch"
                      + (f"; cannot meet it even alone: {', '.join(missing)}" if missing else "; every row meets it"))
    marks = {"holds": "[green]holds[/]", "qualified": "[yellow]qualified[/]", "does not hold": "[red]does not hold[/]"}
    for claim in doc["claims"]:
        mark = marks.get(claim["status"], claim["status"])
        console.print(f"{mark} seed claim: {claim['claim']} — {claim['verdict']}")


@plan_group.command("manifests")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory.")
@click.option("--name", default="self-hosted-small", show_default=True,
              help="Deployment name (also tokenomy's deployment label on the queue-depth metric).")
@click.option("--model", default="meta-llama/Llama-3.1-8B-Instruct", show_default=True, help="vLLM --model.")
@click.option("--model-size", default="8B", show_default=True, help="Throughput row: model size.")
@click.option("--gpu", default="H100", show_default=True, help="Throughput row: GPU.")
@click.option("--precision", default="fp16", show_default=True, help="Throughput row: precision.")
@click.option("--max-replicas", type=int, help="KEDA maxReplicaCount [default: sized from the workload, else 4].")
@click.option("--prometheus-url", default=PROMETHEUS_URL, show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.pass_context
def manifests(ctx: click.Context, out: Path, name: str, model: str, model_size: str, gpu: str, precision: str,
              max_replicas: int | None, prometheus_url: str, namespace: str) -> None:
    """Write keda-scaledobject.yaml, vllm.yaml and tokenomy.yaml into OUT."""
    o = ctx.obj
    gpus = load_gpus(o["gpus_file"])
    rows = [r for r in load_throughput(o["throughput_file"], gpus)
            if (r.model_size, r.gpu, r.precision) == (model_size, gpu, precision)]
    if not rows:
        raise PlanDataError(f"no throughput row for {model_size} {precision} on {gpu}; `tokenomy plan --json` "
                            "lists the rows")
    row, policy = rows[0], policy_from(ctx)
    found = _workload(ctx)
    if max_replicas is None:
        max_replicas = size_option(row, *found, gpus, policy).replicas if found else 4
    if max_replicas < 1:
        raise PlanDataError(f"--max-replicas must be >= 1, got {max_replicas}")
    spec = ManifestSpec(name=name, model=model, namespace=namespace, gpus_per_replica=row.gpus,
                        max_replicas=max_replicas, concurrency=row.concurrency, utilisation=policy.utilisation,
                        activation_threshold=policy.activation_threshold, cooldown_s=policy.cooldown_s,
                        prometheus_url=prometheus_url)
    for path in write_manifests(spec, out):
        click.echo(str(path))
