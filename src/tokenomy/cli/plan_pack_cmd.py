"""``tokenomy plan pack --workloads FILE [--json] [--manifests DIR]``: several models and LoRA adapters packed on
shared GPUs against one model per replica (docs/plan.md, "Packing"). The plan group's options
(``--utilisation``, ``--gpus``, ``--throughput``, KEDA timings) apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from tokenomy.cli.plan_cmd import policy_from
from tokenomy.plan.data import load_gpus, load_throughput
from tokenomy.plan.pack import pack_workloads
from tokenomy.plan.pack_input import read_pack_file
from tokenomy.plan.pack_manifests import PackManifestSpec, write_pack_manifests
from tokenomy.plan.pack_report import pack_document
from tokenomy.plan.serving import load_serving

_file = click.Path(dir_okay=False, path_type=Path)


@click.command("pack")
@click.option("--workloads", "workloads_file", required=True, type=_file, help="Workloads YAML/JSON (docs/plan.md).")
@click.option("--gpu", help="Accelerator to pack onto [default: the file's 'gpu', else H100].")
@click.option("--serving", "serving_file", type=_file, help="Model shapes and engine figures (default: packaged).")
@click.option("--manifests", "manifests_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write vllm-packed.yaml and tokenomy-deployments.yaml here.")
@click.option("--namespace", default="default", show_default=True, help="Namespace of the manifests.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def pack_cmd(ctx: click.Context, workloads_file: Path, gpu: str | None, serving_file: Path | None,
             manifests_dir: Path | None, namespace: str, as_json: bool) -> None:
    """Pack several models and LoRA adapters onto shared GPUs; compare with one model per replica."""
    o = ctx.obj
    policy = policy_from(ctx)
    gpus = load_gpus(o["gpus_file"])
    rows = load_throughput(o["throughput_file"], gpus)
    serving = load_serving(serving_file)
    result = pack_workloads(read_pack_file(workloads_file, gpu), rows, gpus, serving, policy)
    doc = pack_document(result, serving, policy)
    if manifests_dir is not None:
        spec = PackManifestSpec(namespace=namespace, utilisation=policy.utilisation,
                                activation_threshold=policy.activation_threshold, cooldown_s=policy.cooldown_s)
        written = write_pack_manifests(result, spec, gpus.gpus[result.gpu].memory_gb, manifests_dir)
        doc["manifests"] = [str(p) for p in written]
    if as_json:
        click.echo(json.dumps(doc))
    else:
        _render(doc)


def _render(doc: dict[str, Any]) -> None:
    console = Console() if Console().is_terminal else Console(width=170)
    fleets = Table(title=f"One model per replica vs packed, on {doc['gpu']} (utilisation target "
                         f"{doc['assumptions']['utilisation_target']:.0%})", title_justify="left")
    for col in ("", "GPUs", "utilisation mean / peak", "on-demand $/mo", "spot $/mo", "autoscaled $/mo"):
        fleets.add_column(col, justify="left" if not col else "right")
    for key in ("unpacked", "packed"):
        f = doc[key]
        usd = f["usd_per_month"]
        fleets.add_row(key, str(f["gpus"]), f"{f['utilisation']['mean']:.0%} / {f['utilisation']['peak']:.0%}",
                       f"{usd['on_demand']:,.0f}", f"{usd['spot']:,.0f}", f"{usd['autoscaled']:,.0f}")
    console.print(fleets)
    placement = Table(title="Placement", title_justify="left")
    for col in ("group", "GPUs", "replicas", "engine (base model)", "serves", "GB/GPU", "load mean / peak"):
        placement.add_column(col, justify="right" if col in ("GPUs", "replicas", "GB/GPU") else "left")
    for p in doc["placement"]:
        for k, e in enumerate(p["engines"]):
            first = k == 0
            placement.add_row(f"pack-{p['group']}" if first else "", str(p["gpus"]) if first else "",
                              str(p["replicas"]) if first else "", f"{e['model']} ({e['model_size']} {e['precision']})",
                              ", ".join(e["served_models"]), f"{e['memory_gb']['total']:.1f}",
                              f"{p['load_replicas']['mean']:.2f} / {p['load_replicas']['peak']:.2f}" if first else "")
    console.print(placement)
    console.print(f"utilisation claim (15-30 % -> 60-80 %): {doc['utilisation_claim']['verdict']}")
    for path in doc.get("manifests", ()):
        console.print(f"wrote {path}")
