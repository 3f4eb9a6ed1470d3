"""``tokenomy serve``: run the gateway.

The HTTP server is uvicorn (uvloop + httptools) by default: in repeated same-run comparisons it served the same app
3-9 % faster than granian with lower memory (docs/benchmarks.md). ``--server granian`` stays available.
Settings are resolved here, once (flag > env > file > default), and handed to granian's worker
process as JSON, so a bad value is reported before anything starts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import click
import msgspec

from tokenomy.config.settings import Settings, load_settings
from tokenomy.errors import ConfigError, TokenomyError

SETTINGS_ENV = "TOKENOMY_RESOLVED_SETTINGS"


def is_loopback(host: str) -> bool:
    """Only this machine can reach it: ``localhost``, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 4000).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--insecure", is_flag=True, help="Allow binding a non-loopback address without a master key.")
@click.option("--server", "server_kind", type=click.Choice(["granian", "uvicorn"]), default="uvicorn",
              show_default=True, help="HTTP server to run the app on.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Gateway processes on this port (more than one needs PostgreSQL and Redis: docs/scale.md).")
def serve(config_path: str | None, host: str | None, port: int | None, log_level: str | None, insecure: bool,
          server_kind: str, workers: int) -> None:
    """Run the OpenAI-compatible gateway. With no config: the embedded default (local SmolLM2 tier)."""
    settings = load_settings(config_path, flags={"server.host": host, "server.port": port,
                                                 "server.log_level": log_level})
    if not settings.control.master_key and not insecure and not is_loopback(settings.server.host):
        raise ConfigError(f"refusing to serve on {settings.server.host} without a master key: anyone who can reach "
                          "it could spend on your upstreams; set TOKENOMY_MASTER_KEY, or pass --insecure")
    if workers > 1:
        check_workers(settings, workers)
    preflight(settings, config_path or os.environ.get("TOKENOMY_CONFIG"))
    level = settings.server.log_level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"tokenomy gateway on http://{settings.server.host}:{settings.server.port}/v1 ({server_kind})",
               err=True)
    if server_kind == "uvicorn":
        import uvicorn

        from tokenomy.api.app import create_app

        if workers > 1:  # each worker process builds the app from the resolved settings
            os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
            uvicorn.run("tokenomy.api.app:app_from_environment", factory=True, workers=workers,
                        host=settings.server.host, port=settings.server.port, loop="uvloop", http="httptools",
                        log_level=level, access_log=False, lifespan="on")
            return
        app = StartupErrors(create_app(settings))
        try:
            uvicorn.run(app, host=settings.server.host, port=settings.server.port, loop="uvloop",
                        http="httptools", log_level=level, access_log=False, lifespan="on")
        except SystemExit:
            if app.error is not None:
                raise app.error from None
            raise
        return
    from granian import Granian
    from granian.constants import Interfaces, Loops

    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    Granian("tokenomy.api.app:app_from_environment", factory=True, interface=Interfaces.ASGI,
            address=settings.server.host, port=settings.server.port, workers=workers, loop=Loops.uvloop,
            log_level=level, log_access=False).serve()  # type: ignore[arg-type]


def check_workers(settings: Settings, workers: int) -> None:
    """Several processes are replicas on one box: they need the stores replicas share."""
    from tokenomy.config.settings import database_url
    from tokenomy.db.engine import is_postgres

    missing = []
    if not is_postgres(database_url(settings)):
        missing.append("TOKENOMY_DATABASE_URL=postgresql://… (the SQLite ledger is for one process)")
    if not settings.redis_url:
        missing.append("TOKENOMY_REDIS_URL=redis://… (budgets, rate limits and caches shared by the workers)")
    if missing:
        raise ConfigError(f"--workers {workers} needs " + " and ".join(missing))


def preflight(settings: Settings, origin: str | None) -> None:
    """What ``tokenomy config check`` checks, then the port: each problem one line on stderr; exit 2 on an error,
    before anything is loaded."""
    from tokenomy.gateway.check import check_config

    problems = check_config(settings, os.environ)
    for problem in problems:
        click.echo(problem.line(origin), err=True)
    if any(p.level == "error" for p in problems):
        sys.exit(2)
    check_port(settings.server.host, settings.server.port)


def check_port(host: str, port: int) -> None:
    """Fail at once, in one line, when the address is taken (else uvicorn would say so after a full start-up)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another tokenomy serve?); "
                              "pass --port or set TOKENOMY_PORT") from exc


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class StartupErrors:
    """The app, with a tokenomy error raised while it starts kept in ``error`` for ``serve`` to report as one line
    (uvicorn would log the traceback Starlette hands it)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.error: TokenomyError | None = None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet(message: Message) -> None:
            failed = sys.exc_info()[1]  # Starlette reports a failed start-up while it handles the exception
            if message["type"] == "lifespan.startup.failed" and isinstance(failed, TokenomyError):
                self.error = failed
                message = {**message, "message": ""}
            await send(message)

        try:
            await self.app(scope, receive, quiet)
        except TokenomyError as exc:
            if exc is not self.error:
                raise
