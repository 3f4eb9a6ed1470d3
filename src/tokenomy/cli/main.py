"""The ``tokenomy`` command. Each command group lives in its own module; this one only assembles them and draws
the error boundary: a TokenomyError becomes one line on stderr and exit status 2 (a traceback only with --debug)."""

from __future__ import annotations

import sys
from typing import Any

import click

from tokenomy import __version__
from tokenomy.cli.audit_cmd import audit
from tokenomy.cli.batch_cmd import batch_group
from tokenomy.cli.cache_cmd import cache_group
from tokenomy.cli.config_cmd import config_group
from tokenomy.cli.db_cmd import db_group
from tokenomy.cli.distill_cmd import distill_group
from tokenomy.cli.keys_cmd import keys_group
from tokenomy.cli.plan_cmd import plan_group
from tokenomy.cli.plan_pack_cmd import pack_cmd
from tokenomy.cli.prices_cmd import prices_group
from tokenomy.cli.route import route_group
from tokenomy.cli.serve import serve
from tokenomy.cli.spend_cmd import spend
from tokenomy.errors import TokenomyError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TokenomyError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="tokenomy")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """tokenomy: make LLM traffic cheap without making it worse."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


cli.add_command(serve)
cli.add_command(config_group)
cli.add_command(cache_group)
cli.add_command(spend)
cli.add_command(db_group)
cli.add_command(prices_group)
cli.add_command(route_group)
plan_group.add_command(pack_cmd)
cli.add_command(plan_group)
cli.add_command(audit)
cli.add_command(batch_group)
cli.add_command(keys_group)
cli.add_command(distill_group)


def main() -> None:
    cli(prog_name="tokenomy")
