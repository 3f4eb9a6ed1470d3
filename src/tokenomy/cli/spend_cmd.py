"""``tokenomy spend``: what was spent and saved, from the ledger. The first line gives the window, the spend and the
unpriced share (requests and tokens no price covered: not in the cost, never counted as $0)."""

from __future__ import annotations

import time

import click
import orjson

from tokenomy.config.settings import database_url, load_settings
from tokenomy.db.engine import ledger_source
from tokenomy.ledger.queries import GROUPS, spend_report
from tokenomy.ledger.window import window_from


@click.command("spend")
@click.option("--since", default="30d", show_default=True, help="Window start: 24h, 7d, or an ISO date.")
@click.option("--by", type=click.Choice(sorted(GROUPS)), help="Group the report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
def spend(since: str, by: str | None, as_json: bool, config_path: str | None) -> None:
    """Spend, savings, cache hit rate and tier mix from the ledger (TOKENOMY_DATABASE_URL or the data dir)."""
    settings = load_settings(config_path)
    now_s = time.time()
    window = window_from(since, now_s)
    source = ledger_source(database_url(settings))
    try:
        report = spend_report(source, window, by)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    _print(report)


def first_line(report: dict[str, object]) -> str:
    unpriced = report["unpriced"]
    assert isinstance(unpriced, dict)
    line = f"spend {report['since']} → {report['until']}: {report['requests']:,} requests, ${report['cost_usd']}; "
    if unpriced["requests"]:
        return line + (f"UNPRICED: {unpriced['share_of_requests']:.1%} of requests, {unpriced['share_of_tokens']:.1%}"
                       " of tokens (no price: not in the cost)")
    return line + "unpriced: 0 requests"


def _print(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(first_line(report), markup=False, highlight=False, soft_wrap=True,
                  style="bold yellow" if report["unpriced_requests"] else "bold")
    tokens = report["tokens"]
    assert isinstance(tokens, dict)
    summary = Table(title=f"spend {report['since']} → {report['until']}", show_header=False)
    for label, value in (
        ("requests", report["requests"]), ("errors", report["errors"]),
        ("upstream calls", f"{report['upstream_calls']} ({report['failed_upstream_calls']} failed)"),
        ("tokens in / cached / cache-write / out",
         f"{tokens['input']:,} / {tokens['cached_read']:,} / {tokens['cache_write']:,} / {tokens['output']:,}"),
        ("cost", f"${report['cost_usd']}"), ("would have cost", f"${report['counterfactual_usd']}"),
        ("saved", f"${report['saving_usd']}"), ("unpriced requests", report["unpriced_requests"]),
        ("cache hit rate", report["cache"]), ("tier mix", report["tier_mix"]),
    ):
        summary.add_row(label, str(value))
    console.print(summary)
    groups = report.get("groups")
    if isinstance(groups, list) and groups:
        table = Table(title=f"by {report['by']}")
        for col in ("key", "requests", "errors", "prompt_tokens", "output_tokens", "cost_usd", "saving_usd"):
            table.add_column(col, justify="left" if col == "key" else "right")
        for row in groups:
            table.add_row(*(str(row[c]) for c in ("key", "requests", "errors", "prompt_tokens", "output_tokens",
                                                  "cost_usd", "saving_usd")))
        console.print(table)
