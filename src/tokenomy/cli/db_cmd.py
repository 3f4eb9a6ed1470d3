"""``tokenomy db upgrade``: apply pending ledger migrations."""

from __future__ import annotations

import click

from tokenomy.config.settings import database_url, load_settings
from tokenomy.db.engine import masked_url
from tokenomy.ledger.migrate import upgrade


@click.group("db")
def db_group() -> None:
    """Manage the ledger database (TOKENOMY_DATABASE_URL: a SQLite path, default ledger.db in the data dir, or
    postgresql://…)."""


@db_group.command("upgrade")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
def upgrade_cmd(config_path: str | None) -> None:
    """Apply every pending migration."""
    url = database_url(load_settings(config_path))
    applied = upgrade(url)
    shown = masked_url(url)
    click.echo(f"{shown}: applied {', '.join(applied)}" if applied else f"{shown}: up to date")
