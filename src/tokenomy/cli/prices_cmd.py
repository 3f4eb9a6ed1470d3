"""``tokenomy prices``: list the catalogue; ``tokenomy prices import``: merge a LiteLLM price file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tokenomy.config.settings import data_home, load_settings
from tokenomy.pricing.catalogue import Catalogue, Price, PriceError, price_fields


def _override_path(config_path: str | None) -> Path:
    return data_home(load_settings(config_path)) / "prices.json"


def _as_json(price: Price) -> dict[str, Any]:
    out: dict[str, Any] = {"model": price.model, "provider": price.provider,
                           "effective_from": price.effective_from.isoformat(),
                           "usd_per_mtok": price_fields(price.standard),
                           "batch_input": None if price.batch_input is None else str(price.batch_input),
                           "batch_output": None if price.batch_output is None else str(price.batch_output),
                           "verified": price.verified, "source": price.source}
    if price.long_context is not None:
        out["long_context"] = {"threshold_tokens": price.long_context_threshold, **price_fields(price.long_context)}
    return out


class _PricesGroup(click.Group):
    """``prices [MODEL]`` and ``prices import FILE``: a first word that is not a subcommand is a model name."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        if args and args[0] not in self.commands:
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


@click.group("prices", cls=_PricesGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.pass_context
def prices_group(ctx: click.Context, as_json: bool, config_path: str | None) -> None:
    """List prices in force now (USD per million tokens); `prices MODEL` shows one; `prices import FILE` merges."""
    ctx.ensure_object(dict)
    ctx.obj.update(as_json=as_json, config_path=config_path)
    if ctx.invoked_subcommand is None:
        rows = Catalogue.load(_override_path(config_path)).models()
        if as_json:
            click.echo(json.dumps([_as_json(p) for p in rows]))
        else:
            _table(rows)


@prices_group.command("show", hidden=True)
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, model: str, as_json: bool) -> None:
    price = Catalogue.load(_override_path(ctx.obj["config_path"])).find(model, datetime.now(UTC))
    if price is None:
        raise PriceError(f"no price for '{model}'; `tokenomy prices` lists the known models")
    if as_json or ctx.obj["as_json"]:
        click.echo(json.dumps(_as_json(price)))
    else:
        _table([price])


def _table(rows: list[Price]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prices, USD per million tokens")
    for col in ("model", "provider", "since", "input", "cached", "write 5m", "write 1h", "output", "batch in/out",
                "verified"):
        table.add_column(col, justify="left" if col in ("model", "provider") else "right")
    for p in rows:
        s = p.standard
        table.add_row(p.model, p.provider, p.effective_from.isoformat(), str(s.input), _opt(s.cached_input),
                      _opt(s.cache_write_5m), _opt(s.cache_write_1h), str(s.output),
                      f"{_opt(p.batch_input)}/{_opt(p.batch_output)}", "yes" if p.verified else "no")
    Console().print(table)


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


@prices_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def import_cmd(ctx: click.Context, file: str) -> None:
    """Merge a LiteLLM model_prices_and_context_window.json into the user price file (data dir/prices.json)."""
    from tokenomy.pricing.litellm_prices import convert

    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceError(f"cannot read {file}: {exc}") from exc
    result = convert(data, effective_from=datetime.now(UTC).date())
    for line in result.rejected:
        click.echo(f"rejected: {line}", err=True)
    target = _override_path(ctx.obj["config_path"])
    existing: dict[str, Any] = {"models": []}
    if target.exists():
        existing = json.loads(target.read_text(encoding="utf-8"))
    merged = {e["model"]: e for e in existing.get("models", [])}
    merged.update({e["model"]: e for e in result.entries})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"models": list(merged.values())}, indent=1), encoding="utf-8")
    click.echo(f"imported {len(result.entries)} models, rejected {len(result.rejected)}, skipped "
               f"{result.skipped} non-chat rows -> {target}")
