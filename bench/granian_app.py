"""Bench-only: tokenomy's app as a factory for granian (``granian --interface asgi --factory granian_app:create``)."""

from __future__ import annotations

from starlette.applications import Starlette

from tokenomy.api.app import create_app
from tokenomy.config.settings import load_settings


def create() -> Starlette:
    return create_app(load_settings())
