"""``tokenomy config show``, ``tokenomy config check`` and ``tokenomy config import-litellm``."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click
import msgspec
import yaml

from tokenomy.config.litellm_import import convert_litellm
from tokenomy.config.settings import load_settings
from tokenomy.config.vendors import VENDORS
from tokenomy.providers.registry import resolve_deployments


@click.group("config")
def config_group() -> None:
    """Inspect and convert configuration."""


@config_group.command("show")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
def show(config_path: str | None) -> None:
    """Print the effective configuration (file + env + defaults), secrets masked."""
    settings = load_settings(config_path)
    tree = msgspec.to_builtins(settings)
    tree["deployments"] = [_with_key_status(msgspec.to_builtins(d)) for d in resolve_deployments(settings, os.environ)]
    tree["redis_url"] = _mask_url(tree.get("redis_url"))
    tree["ledger"]["database_url"] = _mask_url(tree["ledger"].get("database_url"))
    if tree["control"].get("master_key"):
        tree["control"]["master_key"] = "****"
    click.echo(yaml.safe_dump(tree, sort_keys=False).rstrip())


def _with_key_status(dep: dict[str, object]) -> dict[str, object]:
    """Show which variable holds the key and whether it is set, never its value; mask secret-looking headers."""
    vendor = VENDORS.get(str(dep.get("provider")))
    key_env = dep.get("api_key_env") or (vendor.key_env if vendor else None)
    if key_env:
        value = os.environ.get(str(key_env), "")
        dep["api_key"] = f"${key_env} ({'set, ' + _mask(value) if value else 'not set'})"
    headers = dep.get("headers")
    if isinstance(headers, dict):
        dep["headers"] = {k: _mask(str(v)) if _secretish(k) else v for k, v in headers.items()}
    return dep


def _mask_url(url: object) -> object:
    """``scheme://user:secret@host`` → ``scheme://user:****@host``."""
    if not isinstance(url, str):
        return url
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)


def _secretish(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("auth", "key", "token", "secret"))


def _mask(value: str) -> str:
    return "****" + value[-4:] if len(value) > 8 else "****"


@config_group.command("import-litellm")
@click.argument("litellm_config", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Write the tokenomy config here (default: stdout).")
def import_litellm(litellm_config: str, out: str | None) -> None:
    """Convert a LiteLLM proxy config (model_list, fallbacks) into a tokenomy config."""
    converted = convert_litellm(Path(litellm_config))
    text = yaml.safe_dump(converted.config, sort_keys=False)
    for note in converted.notes:
        click.echo(f"note: {note}", err=True)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out} ({len(converted.config.get('deployments', []))} deployments)", err=True)
    else:
        click.echo(text.rstrip())


@config_group.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--online", is_flag=True, help="Also connect to the stores and ask each upstream for its models.")
def check(config_path: str | None, online: bool) -> None:
    """Check everything `tokenomy serve` would load (routers, fallbacks, keys, prices, stores): one line per
    problem on stderr, exit 2 when any is an error."""
    from tokenomy.gateway.check import check_config

    settings = load_settings(config_path)
    problems = check_config(settings, os.environ, online=online)
    for problem in problems:
        click.echo(problem.line(config_path or os.environ.get("TOKENOMY_CONFIG")), err=True)
    errors = sum(p.level == "error" for p in problems)
    if errors:
        sys.exit(2)
    deployments = resolve_deployments(settings, os.environ)
    click.echo(f"ok: {config_path or os.environ.get('TOKENOMY_CONFIG') or 'the embedded default'}: "
               f"{len(deployments)} deployments ({', '.join(d.name for d in deployments)}), "
               f"{len(problems)} warning(s){'; stores and upstreams reached' if online else ''}")
