"""Bench only: tokenomy's app as a factory for the ASGI-server comparison (uvicorn vs granian on the same app).

``create_app`` takes a Settings, which neither server's command line can pass, so this factory loads them from the
config that TOKENOMY_CONFIG names, the way ``tokenomy serve`` would:

    TOKENOMY_CONFIG=cfg.yaml PYTHONPATH=bench granian --interface asgi --factory asgi_app:create_bench_app
    TOKENOMY_CONFIG=cfg.yaml PYTHONPATH=bench uvicorn --factory --loop uvloop --http httptools asgi_app:create_bench_app
"""

from __future__ import annotations

from starlette.applications import Starlette

from tokenomy.api.app import create_app
from tokenomy.config.settings import load_settings


def create_bench_app() -> Starlette:
    """The app ``tokenomy serve`` builds, from TOKENOMY_CONFIG."""
    app: Starlette = create_app(load_settings())
    return app
