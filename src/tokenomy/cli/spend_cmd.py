"""``tokenomy spend``: what was spent and saved, from the ledger: the local data dir's, or a running gateway's with
``--url`` / TOKENOMY_URL (``GET /v1/spend``: a virtual key sees its own requests, the master key all). The first
line gives the window, the spend and the unpriced share (requests and tokens no price covered: not in the cost,
never counted as $0)."""

from __future__ import annotations

import time
from typing import Any

import click
import orjson

from tokenomy.cli.gateway_client import GatewayClient, api_key_option, given_url, url_option
from tokenomy.config.settings import database_url, load_settings
from tokenomy.db.engine import ledger_source
from tokenomy.ledger.queries import GROUPS, Window, spend_report
from tokenomy.ledger.window import window_from


@click.command("spend")
@click.option("--since", default="30d", show_default=True, help="Window start: 24h, 7d, or an ISO date.")
@click.option("--by", type=click.Choice(sorted(GROUPS)), help="Group the report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@url_option("without either, the ledger in the data dir or TOKENOMY_DATABASE_URL")
@api_key_option("With --url: a virtual key (its own spend) or the master key (all)")
def spend(since: str, by: str | None, as_json: bool, config_path: str | None, url: str | None,
          api_key: str | None) -> None:
    """Spend, savings, cache hit rate and tier mix from the ledger (TOKENOMY_DATABASE_URL or the data dir)."""
    window = window_from(since, time.time())  # a bad window is refused before anything is opened
    if url := given_url(url):
        report = GatewayClient(url, api_key).call("GET", "/v1/spend", params={"since": since, **(
            {"by": by} if by else {})})
    else:
        report = _local(config_path, window, by)
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    _print(report)


def _local(config_path: str | None, window: Window, by: str | None) -> dict[str, Any]:
    source = ledger_source(database_url(load_settings(config_path)))
    try:
        return spend_report(source, window, by)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def first_line(report: dict[str, Any]) -> str:
    unpriced = report["unpriced"]
    line = f"spend {report['since']} → {report['until']}: {report['requests']:,} requests, ${report['cost_usd']}; "
    if unpriced["requests"]:
        return line + (f"UNPRICED: {unpriced['share_of_requests']:.1%} of requests, {unpriced['share_of_tokens']:.1%}"
                       " of tokens (no price: not in the cost)")
    return line + "unpriced: 0 requests"


def _print(report: dict[str, Any]) -> None:
    from tokenomy.cli.terminal import name_column, number_column, out_console, table

    console = out_console()
    console.print(first_line(report), markup=False, highlight=False,
                  soft_wrap=not console.is_terminal,  # piped: one line a script can read whole
                  style="bold yellow" if report["unpriced_requests"] else "bold")
    tokens, cache = report["tokens"], report["cache"]
    summary = table(f"spend {report['since']} → {report['until']}")
    summary.show_header = False
    name_column(summary, "")
    name_column(summary, "")
    mix = ", ".join(f"{tier} {share:.0%}" for tier, share in report["tier_mix"].items()) or "–"
    for label, value in (
        ("requests", f"{report['requests']:,} ({report['errors']:,} errors)"),
        ("upstream calls", f"{report['upstream_calls']:,} ({report['failed_upstream_calls']:,} failed)"),
        ("tokens in / cached / cache-write / out",
         f"{tokens['input']:,} / {tokens['cached_read']:,} / {tokens['cache_write']:,} / {tokens['output']:,}"),
        ("cost", f"${report['cost_usd']}"), ("would have cost", f"${report['counterfactual_usd']}"),
        ("saved", f"${report['saving_usd']}"), ("unpriced requests", f"{report['unpriced_requests']:,}"),
        ("cache hits", f"{cache['hits']:,} ({cache['hit_rate']:.1%} of requests)"), ("tier mix", mix),
        *([("semantic verifications", f"{cache['semantic_verifications']:,} (sent upstream, in the cost)")]
          if cache.get("semantic_verifications") else []),
    ):
        summary.add_row(label, value)
    console.print(summary)
    groups = report.get("groups")
    if isinstance(groups, list) and groups:
        by = table(f"by {report['by']}")
        name_column(by, str(report["by"]))
        for column in ("requests", "errors", "tokens in", "tokens out", "cost $", "saved $"):
            number_column(by, column)
        for row in groups:
            by.add_row(str(row["key"]), f"{row['requests']:,}", f"{row['errors']:,}", f"{row['prompt_tokens']:,}",
                       f"{row['output_tokens']:,}", str(row["cost_usd"]), str(row["saving_usd"]))
        console.print(by)
    if not report["requests"]:
        click.echo(f"no requests in the ledger since {report['since']}: serve some traffic, or widen --since",
                   err=True)
