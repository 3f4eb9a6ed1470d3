"""``tokenomy prices [--json] [--at DATE] [--provider P] [MODEL]``: the price catalogue in force (USD per million
tokens). ``tokenomy prices update [--out FILE] [--force]``: snapshot a newer installed genai-prices into the data dir.
``tokenomy prices import FILE [--out FILE]``: merge a LiteLLM price file into the user's override file.

The override file is ``<data dir>/prices.json`` (the data dir is ``TOKENOMY_HOME`` or ``home:`` in the config,
else ``~/.local/share/tokenomy``); ``Catalogue.load`` reads it after the packaged catalogue, so every command and
the gateway's ledger see the merged prices. ``--out`` writes elsewhere (a file to review, or to commit).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from tokenomy.config.settings import data_home, load_settings
from tokenomy.pricing.catalogue import (
    OVERRIDE_FILENAME,
    SNAPSHOT_FILENAME,
    Catalogue,
    base_documents,
    newest_snapshot,
    read_document,
    read_snapshot,
    source_version,
    version_tuple,
)
from tokenomy.pricing.price import Price, PriceError, entry_document, plain, row_document

UNIT = "USD per 1M tokens"


def _override_path(config_path: str | None) -> Path:
    return data_home(load_settings(config_path)) / OVERRIDE_FILENAME


def _when(at: date | None) -> datetime:
    return datetime.combine(at, time(), UTC) if at is not None else datetime.now(UTC)


def _price_json(price: Price) -> dict[str, Any]:
    return {"model": price.model, "provider": price.provider, "unit": UNIT, **row_document(price)}


class _PricesGroup(click.Group):
    """``prices MODEL`` and ``prices import FILE``: a first word that is not a subcommand is a model name."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands:
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


_UNDATED = date(1970, 1, 1)  # the start date of a snapshot row that gives none
_date = click.DateTime(formats=["%Y-%m-%d"])


@click.group("prices", cls=_PricesGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (or object, for one MODEL).")
@click.option("--at", "at", type=_date, help="Prices in force on this UTC date (default: now).")
@click.option("--provider", "providers", multiple=True, help="Only this provider's models (repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file (for the data dir).")
@click.option("--wide", is_flag=True, help="Every column, whatever the terminal's width.")
@click.pass_context
def prices_group(ctx: click.Context, as_json: bool, at: datetime | None, providers: tuple[str, ...],
                 config_path: str | None, wide: bool) -> None:
    """The price catalogue (USD per million tokens): every model, or `prices MODEL` (any name a log carries: dated
    snapshots, provider prefixes, Bedrock/Vertex/OpenRouter/fine-tune ids); `prices update` takes a newer installed
    genai-prices; `prices import FILE` merges a LiteLLM price file into the override file in the data dir."""
    ctx.ensure_object(dict)
    ctx.obj.update(as_json=as_json, at=at.date() if at else None, config_path=config_path, wide=wide)
    if ctx.invoked_subcommand is None:
        catalogue = Catalogue.load(_override_path(config_path))
        wanted = {p.lower() for p in providers}
        in_force = catalogue.in_force(_when(ctx.obj["at"]))
        # a snapshot row without a start date applies to every earlier call (old logs stay priced); a date before
        # the first dated price in the catalogue asks for prices nobody published
        dated = [r.effective_from for e in catalogue.entries() for r in e.rows if r.effective_from > _UNDATED]
        first = min(dated, default=_UNDATED)
        if not in_force or (ctx.obj["at"] is not None and ctx.obj["at"] < first):
            raise PriceError(f"no model has a price in force on {ctx.obj['at']}: the catalogue's first dated prices "
                             f"are from {first}; give a later --at")
        rows = [p for p in in_force if not wanted or p.provider.lower() in wanted]
        if not rows:
            known = sorted({p.provider for p in in_force})
            raise PriceError(f"no model of provider {', '.join(providers)} has a price here; providers: "
                             f"{', '.join(known)}")
        if as_json:
            click.echo(json.dumps([_price_json(p) for p in rows]))
        else:
            _table(rows, wide)
            click.echo(f"{len(rows):,} models; sources: {', '.join(catalogue.sources)}, our prices.json"
                       f"{', ' + str(_override_path(config_path)) if _override_path(config_path).is_file() else ''}")


@prices_group.command("show", hidden=True)
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--at", "at", type=_date, help="The price in force on this UTC date (default: now).")
@click.option("--wide", is_flag=True, help="Every column, whatever the terminal's width.")
@click.pass_context
def show(ctx: click.Context, model: str, as_json: bool, at: datetime | None, wide: bool) -> None:
    catalogue = Catalogue.load(_override_path(ctx.obj["config_path"]))
    price = catalogue.price_for(model, _when(at.date() if at else ctx.obj["at"]))
    if as_json or ctx.obj["as_json"]:
        entry = catalogue.resolve(model)
        click.echo(json.dumps({**_price_json(price), "asked": model, "aliases": list(entry.aliases) if entry else []}))
    else:
        _table([price], wide or ctx.obj["wide"])


_NARROW = ("model", "input", "cached", "output", "batch in/out")
_ALL = ("model", "provider", "since", "input", "cached", "write 5m/1h", "output", "batch in/out", "long context",
        "verified")


def _table(rows: list[Price], wide: bool) -> None:
    """Model and the four prices a user compares fit 80 columns; provider, dates, cache writes and long-context
    rates come with --wide (or on a terminal of 150 columns)."""
    from tokenomy.cli.terminal import name_column, number_column, out_console, table, wide_enough

    console = out_console(wide)
    columns = _ALL if wide_enough(console, wide, 150) else _NARROW
    found = table(f"prices, {UNIT}" + ("" if columns == _ALL else " (--wide: provider, dates, cache writes, long "
                                                                   "context)"))
    for column in columns:
        if column in ("model", "provider"):
            name_column(found, column)
        else:
            number_column(found, column)
    for p in rows:
        tier = p.long_context
        since = "–" if p.effective_from == _UNDATED else p.effective_from.isoformat()  # a snapshot row gives none
        cells = {"model": p.model, "provider": p.provider, "since": since,
                 "input": plain(p.input), "cached": plain(p.cached_input),
                 "write 5m/1h": f"{plain(p.cache_write_5m)}/{plain(p.cache_write_1h)}", "output": plain(p.output),
                 "batch in/out": f"{plain(p.batch_input)}/{plain(p.batch_output)}",
                 "long context": f">{tier.threshold_tokens:,}: {plain(tier.input)}/{plain(tier.output)}" if tier
                 else "-", "verified": "yes" if p.verified else "no"}
        found.add_row(*(cells[c] for c in columns))
    console.print(found)


@prices_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of <data dir>/prices.json.")
@click.option("--effective-from", type=_date, help="Date the imported prices apply from (default: today, UTC).")
@click.option("--provider", "providers", multiple=True, help="Only rows of this litellm_provider (repeatable).")
@click.option("--new-only", is_flag=True, help="Skip models the catalogue already prices.")
@click.pass_context
def import_cmd(ctx: click.Context, file: str, out: str | None, effective_from: datetime | None,
               providers: tuple[str, ...], new_only: bool) -> None:
    """Merge a LiteLLM model_prices_and_context_window.json: each valid chat row becomes a dated row of the
    override file; an invalid row is rejected with one line naming the model and the field."""
    from tokenomy.pricing.litellm_prices import convert

    target = Path(out) if out else _override_path(ctx.obj["config_path"])
    result = convert(read_document(Path(file)), origin=Path(file).name, providers=providers or None,
                     effective_from=effective_from.date() if effective_from else datetime.now(UTC).date())
    for line in result.rejected:
        click.echo(f"rejected: {line}", err=True)
    known = Catalogue.load(target)
    entries = [e for e in result.entries if not (new_only and known.resolve(e.name))]
    merged = Catalogue.from_documents([(read_document(target), str(target))]) if target.is_file() else Catalogue()
    for entry in entries:
        merged.merge(entry)
    document = {"_comment": f"tokenomy price overrides, merged over the packaged catalogue ({UNIT})",
                "models": [entry_document(e) for e in merged.entries()]}
    # the merged file must still load over the packaged catalogue before it replaces the old one
    Catalogue.from_documents([*base_documents(), (document, str(target))])
    _write_atomically(target, json.dumps(document, indent=1) + "\n")
    skipped = result.skipped + len(result.entries) - len(entries)
    click.echo(f"imported {len(entries)} models, rejected {len(result.rejected)}, skipped {skipped} "
               f"(not chat, not priced per token{', already known' if new_only else ''}) -> {target}")


@prices_group.command("update")
@click.option("--out", type=click.Path(dir_okay=False), help=f"Write here instead of <data dir>/{SNAPSHOT_FILENAME}.")
@click.option("--force", is_flag=True, help="Write even when the installed genai-prices is not newer.")
@click.pass_context
def update_cmd(ctx: click.Context, out: str | None, force: bool) -> None:
    """Snapshot the installed genai-prices (after `pip install -U genai-prices`) into the data dir; the catalogue
    then uses the newer of it and the packaged snapshot. Prints what changed."""
    from tokenomy.pricing.genai_snapshot import build_snapshot, installed_version, snapshot_lines

    installed = installed_version()
    if installed is None:
        raise PriceError("genai-prices is not installed: `pip install -U 'tokenomy[prices]'`, then run this again")
    written = _override_path(ctx.obj["config_path"]).with_name(SNAPSHOT_FILENAME)
    target = Path(out) if out else written
    current_path = newest_snapshot(written)
    current = read_snapshot(current_path)
    before = ".".join(map(str, source_version(current)))
    if not force and version_tuple(installed) <= source_version(current):
        click.echo(f"genai-prices {installed} is installed; the catalogue already uses {before} ({current_path}): "
                   "nothing to do (--force writes it anyway)")
        return
    build = build_snapshot(datetime.now(UTC).date())
    text = "\n".join(snapshot_lines(build.document)) + "\n"
    new = Catalogue.from_documents([(json.loads(text, parse_float=Decimal), str(target))])  # it must load
    old = Catalogue.from_documents([(current, str(current_path))])
    old_rows = {e.name: [_figures(r) for r in e.rows] for e in old.entries()}
    new_rows = {e.name: [_figures(r) for r in e.rows] for e in new.entries()}
    changed = sum(1 for name, rows in new_rows.items() if name in old_rows and old_rows[name] != rows)
    _write_atomically(target, text)
    click.echo(f"genai-prices {before} -> {installed}: {len(new_rows):,} models ({len(set(new_rows) - set(old_rows))} "
               f"new, {len(set(old_rows) - set(new_rows))} gone, {changed} with changed rows; {len(build.skipped)} "
               f"not priced per token, {len(build.repaired)} figures dropped) -> {target}")


def _figures(price: Price) -> dict[str, Any]:
    """A row without its source text: what a price change is."""
    return {k: v for k, v in row_document(price).items() if k != "source"}


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a price file is not a secret
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PriceError(f"cannot write {path}: {exc.strerror or exc}") from exc
