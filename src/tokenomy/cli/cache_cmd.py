"""``tokenomy cache simulate``: what provider prompt caching would bill for a workload, with and without shaping."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from tokenomy.errors import InvalidRequestError

DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o"}


@click.group("cache")
def cache_group() -> None:
    """Response and prompt caching tools."""


@cache_group.command("simulate")
@click.argument("log", type=click.Path(dir_okay=False), required=False)
@click.option("--demo", is_flag=True, help="Use the built-in multi-turn workload instead of a log.")
@click.option("--provider", type=click.Choice(["anthropic", "openai"]), default="anthropic", show_default=True)
@click.option("--model", help="Model whose prices and cache minimums apply (default per provider).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def simulate(log: str | None, demo: bool, provider: str, model: str | None, as_json: bool) -> None:
    """Replay LOG (OpenAI-format JSONL: timestamp + request per line) through the provider's caching rules."""
    from tokenomy.cache.simulate import Simulator
    from tokenomy.cache.workload import demo as demo_workload
    from tokenomy.cache.workload import read_log
    from tokenomy.pricing.catalogue import Catalogue
    from tokenomy.tokens.counter import TokenCounter

    if bool(log) == demo:
        raise InvalidRequestError("give a LOG file or --demo (one of them)")
    workload = demo_workload() if demo else list(read_log(Path(str(log))))
    simulator = Simulator(provider, model or DEFAULT_MODELS[provider], TokenCounter(), Catalogue.load())
    report = simulator.run(workload)
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    for label in ("unshaped", "shaped"):
        r = report[label]
        click.echo(f"{label:9} requests {r['requests']}  prompt {r['prompt_tokens']:,}"
                   f"  cacheable {r['cacheable_prefix_tokens']:,}  read {r['cache_read_tokens']:,}"
                   f" ({r['cacheable_read_share']:.1%} of cacheable)"
                   f"  write {r['cache_write_5m_tokens'] + r['cache_write_1h_tokens']:,}  ${r['cost_usd']}")
    click.echo(f"saving ${report['saving_usd']} ({report['provider']}, {report['model']})")
