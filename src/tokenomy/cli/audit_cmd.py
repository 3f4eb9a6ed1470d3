"""``tokenomy audit LOG... [--json] [--html OUT] [--demo]``: what the logged traffic cost, and what each strategy
would save.

Formats, assumptions and sample output: docs/audit.md.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from tokenomy.audit.demo import write_demo
from tokenomy.audit.html import render_html
from tokenomy.audit.report import audit_document
from tokenomy.audit.routing import RouterTargets
from tokenomy.audit.run import run_audit
from tokenomy.audit.strategies import Assumptions
from tokenomy.audit.terminal import render
from tokenomy.cli.terminal import out_console, show_progress
from tokenomy.config.settings import data_home, load_settings
from tokenomy.db.engine import is_postgres
from tokenomy.errors import AuditError
from tokenomy.pricing.catalogue import OVERRIDE_FILENAME, Catalogue


class LogSource(click.ParamType[Path | str]):
    """A LOG argument: a file path (as ``click.Path(dir_okay=False)``), or a PostgreSQL ledger URL kept as the
    string it is (a ``Path`` would fold its ``//``)."""

    name = "log"
    _path = click.Path(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        if isinstance(value, str) and is_postgres(value):
            return value
        converted: Path = self._path.convert(value, param, ctx)
        return converted


@click.command("audit")
@click.argument("logs", nargs=-1, type=LogSource())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (`tokenomy plan --from-audit` reads it).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as one self-contained HTML page with charts to this file.")
@click.option("--demo", is_flag=True, help="Audit a generated week of demo traffic instead of LOG files.")
@click.option("--batchable-share", type=float, default=0.25, show_default=True,
              help="Share of non-streamed requests without a batch marker assumed latency-tolerant.")
@click.option("--ttl", "ttl_h", type=float, default=24, show_default=True, help="Exact-cache TTL, hours.")
@click.option("--small-model", help="Routing target [default: the catalogue's cheapest mid-tier model].")
@click.option("--semantic/--no-semantic", default=True, show_default=True,
              help="Measure paraphrases on a sample with WordLlama static embeddings (needs tokenomy[route]).")
@click.option("--router", "router_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A trained router directory (tokenomy route train): replaces the routing heuristic.")
@click.option("--target-quality", type=float,
              help="With --router: route at quality=Q [default: the router's own target]. The heuristic ignores it.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config file (for the price override file).")
def audit(logs: tuple[Path | str, ...], as_json: bool, html_out: Path | None, demo: bool, batchable_share: float,
          ttl_h: float, small_model: str | None, semantic: bool, router_dir: Path | None, target_quality: float | None,
          config_path: Path | None) -> None:
    """Audit request logs (OpenAI-format JSONL, OpenAI Batch files, tokenomy's ledger: a .db file or a
    postgresql:// URL): spend by model, day and hour, and the monthly savings of exact caching, routing, prompt
    caching and batch, alone and combined."""
    if demo == bool(logs):
        raise AuditError("give LOG files or --demo (not both)")
    if ttl_h <= 0:
        raise AuditError(f"--ttl must be > 0 hours, got {ttl_h}")
    override = data_home(load_settings(str(config_path) if config_path else None)) / OVERRIDE_FILENAME
    assumptions = Assumptions(exact_ttl_s=round(ttl_h * 3600), batchable_share=batchable_share,
                              small_model=small_model)
    catalogue = Catalogue.load(override)
    if small_model is not None and catalogue.resolve(small_model) is None:
        raise AuditError(f"--small-model {small_model!r} has no price in the catalogue, so no routing saving can be "
                         "measured; `tokenomy prices` lists the priced models (`tokenomy prices import` adds one)")
    router = RouterTargets.load(router_dir, target_quality) if router_dir is not None else None
    err = Console(stderr=True)
    with ExitStack() as stack:
        if demo:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tokenomy-audit-")))
            logs = (write_demo(tmp / "demo.jsonl"),)
        progress = None
        if show_progress():
            progress = stack.enter_context(Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                                    TimeRemainingColumn(), console=err, transient=True))
        run = run_audit(logs, catalogue, assumptions, _on_file(progress), router,
                        semantic)
    doc = audit_document(run)
    if target_quality is not None:
        doc["target_quality"] = target_quality
    if html_out is not None:
        html_out.write_text(render_html(doc), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(doc))
    else:
        render(doc, out_console())


def _on_file(progress: Progress | None) -> Callable[[Path, int], Callable[[int], None] | None] | None:
    if progress is None:
        return None
    bar = progress

    def on_file(path: Path, size: int) -> Callable[[int], None]:
        task = bar.add_task(path.name, total=size)

        def advance(n: int) -> None:
            bar.advance(task, n)

        return advance

    return on_file
