"""``tokenomy serve``: run the gateway."""

from __future__ import annotations

import logging

import click

from tokenomy.config.settings import load_settings


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 4000).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: str | None, host: str | None, port: int | None, log_level: str | None) -> None:
    """Run the OpenAI-compatible gateway. With no config: the embedded default (local SmolLM2 tier)."""
    import uvicorn

    from tokenomy.api.app import create_app

    settings = load_settings(config_path, flags={"server.host": host, "server.port": port,
                                                 "server.log_level": log_level})
    level = settings.server.log_level
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"tokenomy gateway on http://{settings.server.host}:{settings.server.port}/v1", err=True)
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port, loop="uvloop",
                http="httptools", log_level=level, access_log=False, lifespan="on")
