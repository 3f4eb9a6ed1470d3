"""Stand-ins for paid vendors: the documented config, with each vendor deployment pointed at a local server that
speaks its API (the fault upstream for OpenAI-compatible vendors; a recorded Messages answer for Anthropic)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
from aiohttp import web

from servers import run_aiohttp
from tokenomy.config.settings import DeploymentConfig, Settings
from tokenomy.providers.registry import resolve_deployments

RECORDED = Path(__file__).parent.parent / "providers" / "fixtures" / "anthropic" / "message_cached.json"


@contextlib.contextmanager
def standin_upstreams(settings: Settings, openai_base: str) -> Iterator[Settings]:
    """``settings`` with every remote deployment (listed, or joined from the keys) on a stand-in upstream."""

    async def messages(request: web.Request) -> web.Response:
        return web.Response(body=RECORDED.read_bytes(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    with run_aiohttp(app) as anthropic_base:
        env = {"OPENAI_API_KEY": "sk-doc-test", "ANTHROPIC_API_KEY": "sk-ant-doc-test"}
        found: list[DeploymentConfig] = []
        for dep in resolve_deployments(settings, env):
            if dep.provider == "local":
                found.append(dep)
                continue
            base = anthropic_base if dep.provider == "anthropic" else openai_base
            found.append(msgspec.structs.replace(dep, base_url=base))
        yield msgspec.structs.replace(settings, deployments=found)
