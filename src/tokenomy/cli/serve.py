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
        run_uvicorn(settings, workers)
        return
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    server = settings.server
    http1 = HTTP1Settings(header_read_timeout=int(server.header_timeout_s * 1000),
                          max_buffer_size=server.max_header_bytes)
    Granian("tokenomy.api.app:app_from_environment", factory=True, interface=Interfaces.ASGI,
            address=server.host, port=server.port, workers=workers, loop=Loops.uvloop, http1_settings=http1,
            workers_kill_timeout=server.graceful_shutdown_s, log_level=level,  # type: ignore[arg-type]
            log_access=False).serve()


def run_uvicorn(settings: Settings, workers: int) -> None:
    """uvicorn (uvloop + httptools) with our limits on headers, bodies and shutdown (``cli.http_limits``)."""
    from uvicorn import Server
    from uvicorn.supervisors import Multiprocess

    from tokenomy.api.app import create_app
    from tokenomy.cli.http_limits import LimitedConfig, ServerLimits

    server = settings.server
    limits = ServerLimits(header_timeout_s=server.header_timeout_s, max_header_bytes=server.max_header_bytes,
                          body_idle_timeout_s=server.body_idle_timeout_s)
    options: dict[str, Any] = {
        "host": server.host, "port": server.port, "loop": "uvloop", "log_level": server.log_level,
        "access_log": False, "lifespan": "on", "timeout_keep_alive": server.keep_alive_s,
        "timeout_graceful_shutdown": server.graceful_shutdown_s}
    if workers > 1:  # each worker process builds the app from the resolved settings
        os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
        config = LimitedConfig("tokenomy.api.app:app_from_environment", limits, factory=True, workers=workers,
                               **options)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    app = StartupErrors(create_app(settings))
    runner = Server(LimitedConfig(app, limits, **options))
    try:
        runner.run()
    except SystemExit:  # uvicorn (0.55) exits 3 itself when the app did not start
        if app.error is None:
            raise
    if app.error is not None:  # a config or store error while starting: one line, not Starlette's traceback
        raise app.error
    if not runner.started:
        sys.exit(3)  # as uvicorn.run does when the app did not start


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
