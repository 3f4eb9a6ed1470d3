"""``tokenomy keys``: virtual keys and team budgets, in the local data dir's ledger database, or through a running
gateway's admin API with ``--url`` / TOKENOMY_URL (the master key from ``--api-key``, TOKENOMY_API_KEY or
TOKENOMY_MASTER_KEY)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click
import orjson

from tokenomy.cli.gateway_client import GatewayClient, api_key_option, given_url, url_option
from tokenomy.config.settings import database_url, load_settings
from tokenomy.control.keys import KeyStore, parse_expiry
from tokenomy.db.engine import open_database
from tokenomy.errors import AuthenticationError, InvalidRequestError
from tokenomy.ledger.migrate import upgrade


def _store(config_path: str | None) -> KeyStore:
    url = database_url(load_settings(config_path))
    upgrade(url)
    return KeyStore(open_database(url, pooled=False))


def _admin(url: str, api_key: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    client = GatewayClient(url, api_key)
    if not client.key:
        raise AuthenticationError(f"keys --url {url} needs the gateway's master key: set TOKENOMY_API_KEY (or "
                                  "TOKENOMY_MASTER_KEY), or pass --api-key")
    return client.call(method, path, json=body)


def _fields(team: str | None, budget_usd: str | None, period: str | None, rpm: int | None, tpm: int | None,
            models: str | None, expires: str | None, tags: tuple[str, ...]) -> dict[str, Any]:
    """The options given, as the admin API's fields (``none`` clears a value)."""
    out: dict[str, Any] = {}
    if team is not None:
        out["team"] = None if team == "none" else team
    if budget_usd is not None:
        out["budget_usd"] = None if budget_usd == "none" else _usd(budget_usd)
    if period is not None:
        out["period"] = period
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None:
            out[name] = None if value == 0 else value
    if models is not None:
        out["models"] = None if models == "none" else [m.strip() for m in models.split(",") if m.strip()]
    if expires is not None:
        out["expires"] = None if expires == "none" else expires
    if tags:
        out["tags"] = dict(_tag(t) for t in tags)
    return out


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidRequestError(f"--budget-usd {text!r} is not an amount (e.g. 25 or 0.50)") from exc
    return value


def _tag(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InvalidRequestError(f"--tag {text!r}: use NAME=VALUE")
    return name, value


def _local(fields: dict[str, Any]) -> dict[str, Any]:
    """Admin-API fields → KeyStore fields (``expires`` becomes ``expires_us``)."""
    out = dict(fields)
    if "expires" in out:
        value = out.pop("expires")
        out["expires_us"] = parse_expiry(value) if value is not None else None
    return out


def _wire(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in fields.items()}


_OPTIONS = [
    click.option("--team", help="Team the key belongs to (its spend also counts toward the team's budget)."),
    click.option("--budget-usd", help="Budget in USD for each period ('none' clears it)."),
    click.option("--period", type=click.Choice(["total", "daily", "monthly"]), help="Budget period (default total)."),
    click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute (0 clears)."),
    click.option("--tpm", type=click.IntRange(min=0), help="Tokens per minute (0 clears)."),
    click.option("--models", help="Comma-separated models/routers the key may use ('none': any)."),
    click.option("--expires", help="Expiry, an ISO date or datetime in UTC ('none' clears)."),
    click.option("--tag", "tags", multiple=True, help="NAME=VALUE metadata copied into every ledger row."),
]
_COMMON = [
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    url_option("without either, the local data dir's ledger database"),
    api_key_option("With --url: the gateway's master key"),
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with(options: list[Any]) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


@click.group("keys")
def keys_group() -> None:
    """Virtual keys (tk-…) and team budgets."""


@keys_group.command("create")
@click.option("--name", required=True, help="A name for the key (shown in reports).")
@_with(_OPTIONS + _COMMON)
def create(name: str, as_json: bool, url: str | None, api_key: str | None, config_path: str | None,
           **options: Any) -> None:
    """Create a key; the key itself is printed once and never stored."""
    fields = _fields(**options)
    if url := given_url(url):
        shown = _admin(url, api_key, "POST", "/admin/keys", {"name": name, **_wire(fields)})
    else:
        record, key = _store(config_path).create(name, **_local(fields))
        shown = {"key": key, **record.public()}
    if as_json:
        click.echo(orjson.dumps(shown).decode())
        return
    click.echo(f"created {shown['id']} ({shown['name']}): {shown['key']}")
    click.echo("the key is shown only now; store it safely", err=True)


@keys_group.command("list")
@click.option("--wide", is_flag=True, help="Every column, whatever the terminal's width.")
@_with(_COMMON)
def list_cmd(wide: bool, as_json: bool, url: str | None, api_key: str | None, config_path: str | None) -> None:
    """Every key (never the key itself: its last 4 characters)."""
    url = given_url(url)
    rows = _admin(url, api_key, "GET", "/admin/keys")["data"] if url else \
        [k.public() for k in _store(config_path).list_keys()]
    if as_json:
        click.echo(orjson.dumps({"object": "list", "data": rows}).decode())
        return
    _key_table(rows, wide)


def _key_table(rows: list[dict[str, Any]], wide: bool) -> None:
    """Id, name, the key's last characters, status, budget and expiry fit 80 columns; team and limits come with
    --wide (or on a terminal of 120 columns). Ids are never cut."""
    from tokenomy.cli.terminal import id_column, name_column, out_console, short_column, shown, table, wide_enough

    if not rows:
        click.echo("no keys yet: `tokenomy keys create --name NAME`", err=True)
        return
    console = out_console(wide)
    every = wide_enough(console, wide, 120)
    found = table("keys" if every else "keys (--wide: team, rpm, tpm)")
    id_column(found, "id")
    name_column(found, "name")
    for column in ("key", "status", "budget $", *(("team", "rpm / tpm") if every else ()), "expires"):
        short_column(found, column)
    for row in rows:
        budget = f"{row['budget_usd']} {row['period']}" if row.get("budget_usd") is not None else "–"
        cells = [row["id"], row["name"], shown(row.get("display")), shown(row.get("status")), budget]
        if every:
            cells += [shown(row.get("team")), f"{shown(row.get('rpm'))} / {shown(row.get('tpm'))}"]
        found.add_row(*cells, _day(row.get("expires")))
    console.print(found)


def _day(iso: str | None) -> str:
    """An ISO time as its UTC date, with the time of day when it has one."""
    if not iso:
        return "–"
    day, _, clock = iso.partition("T")
    return day if clock.startswith("00:00:00") else f"{day} {clock[:5]} UTC"


@keys_group.command("update")
@click.argument("key_or_id")
@click.option("--name", help="A new name.")
@_with(_OPTIONS + _COMMON)
def update(key_or_id: str, name: str | None, as_json: bool, url: str | None, api_key: str | None,
           config_path: str | None, **options: Any) -> None:
    """Change a key's name, team, budget, limits, models, expiry or tags."""
    fields = _fields(**options) | ({"name": name} if name is not None else {})
    if not fields:
        raise InvalidRequestError("nothing to change: give at least one option (see --help)")
    if url := given_url(url):
        shown = _admin(url, api_key, "PATCH", f"/admin/keys/{urllib.parse.quote(key_or_id, safe='')}", _wire(fields))
    else:
        shown = _store(config_path).update(key_or_id, _local(fields)).public()
    click.echo(orjson.dumps(shown).decode() if as_json else f"updated {shown['id']} ({shown['name']})")


@keys_group.command("revoke")
@click.argument("key_or_id")
@_with(_COMMON)
def revoke(key_or_id: str, as_json: bool, url: str | None, api_key: str | None, config_path: str | None) -> None:
    """Revoke a key (by the key, its id or its name): every replica refuses it within seconds."""
    if url := given_url(url):
        shown = _admin(url, api_key, "POST", f"/admin/keys/{urllib.parse.quote(key_or_id, safe='')}/revoke")
    else:
        shown = _store(config_path).revoke(key_or_id).public()
    click.echo(orjson.dumps(shown).decode() if as_json else f"revoked {shown['id']} ({shown['name']})")


@keys_group.command("team")
@click.argument("name")
@click.option("--budget-usd", help="Budget in USD for each period ('none' clears it).")
@click.option("--period", type=click.Choice(["total", "daily", "monthly"]), help="Budget period.")
@click.option("--rpm", type=click.IntRange(min=0), help="Requests per minute for the whole team (0 clears).")
@click.option("--tpm", type=click.IntRange(min=0), help="Tokens per minute for the whole team (0 clears).")
@_with(_COMMON)
def team(name: str, budget_usd: str | None, period: str | None, rpm: int | None, tpm: int | None, as_json: bool,
         url: str | None, api_key: str | None, config_path: str | None) -> None:
    """Create or change a team's budget and limits (its keys' spend counts toward it)."""
    fields = _fields(None, budget_usd, period, rpm, tpm, None, None, ())
    if url := given_url(url):
        shown = _admin(url, api_key, "PUT", f"/admin/teams/{urllib.parse.quote(name, safe='')}", _wire(fields))
    else:
        shown = _store(config_path).set_team(name, **fields).public()
    budget = f"${shown['budget_usd']} {shown['period']}" if shown.get("budget_usd") is not None else "no budget"
    limits = ", ".join(f"{n} {shown[n]}" for n in ("rpm", "tpm") if shown.get(n) is not None) or "no rate limits"
    click.echo(orjson.dumps(shown).decode() if as_json else f"team {shown['name']}: {budget}, {limits}")
