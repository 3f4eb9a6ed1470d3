"""The app factory: ``create_app(settings)`` builds the Starlette app; nothing is opened until its lifespan starts."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokenomy.api import admin, ui
from tokenomy.api.auth import AuthMiddleware
from tokenomy.api.batch_lines import GatewayLines
from tokenomy.api.batches import cancel_batch, create_batch, list_batches, retrieve_batch
from tokenomy.api.chat_completions import chat_completions
from tokenomy.api.embeddings import embeddings
from tokenomy.api.errors import HANDLERS
from tokenomy.api.feedback import feedback
from tokenomy.api.files import create_file, delete_file, file_content, list_files, retrieve_file
from tokenomy.api.health import healthz, readyz
from tokenomy.api.metrics import Metrics, metrics_endpoint
from tokenomy.api.models import get_model, list_models
from tokenomy.api.openapi import openapi_endpoint
from tokenomy.api.state import Gateway
from tokenomy.batch.setup import build_batches
from tokenomy.cache.setup import build_exact_cache, build_semantic_layer
from tokenomy.config.settings import Settings, database_url
from tokenomy.control.setup import build_admission
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.dispatch.embeddings import EmbeddingsDispatcher, TokenCount
from tokenomy.distill.bodies import build_body_store
from tokenomy.distill.serve import StudentSet
from tokenomy.ledger.database import DatabaseOpener
from tokenomy.ledger.setup import build_accountant, open_writer
from tokenomy.providers.registry import Deployment, build_deployments, build_embedding_deployments
from tokenomy.routing.serve import RouterSet, router_configs

log = logging.getLogger("tokenomy")


def create_app(settings: Settings, env: Mapping[str, str] | None = None) -> Starlette:
    """An ASGI app serving the OpenAI-compatible API for ``settings``; ``env`` supplies provider keys."""
    environment = dict(os.environ if env is None else env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        students = await asyncio.to_thread(StudentSet.load, settings, environment)
        deployments = build_deployments(settings, environment) + (students.deployments() if students else [])
        catalog = Catalog(deployments, settings.fallbacks)
        await asyncio.gather(*(start() for d in deployments if (start := getattr(d.provider, "start", None))))
        dispatcher = Dispatcher(catalog, settings.retry, settings.routing)
        opener = DatabaseOpener(database_url(settings, environment))
        writer = await asyncio.to_thread(open_writer, settings, environment, opener)
        await writer.start()
        metrics = Metrics()
        metrics.watch(dispatcher.inflight, lambda: _queue_depths(deployments), lambda: writer.queued)
        accountant = build_accountant(settings, environment)
        cache = build_exact_cache(settings, environment)
        gateway = Gateway(settings=settings, dispatcher=dispatcher, accountant=accountant, ledger=writer,
                          metrics=metrics, cache=cache)
        gateway.ledger_source = opener.report_source()
        gateway.durable_ack = _durable_ack(settings.ledger.ack, opener.postgres)
        gateway.control = await build_admission(settings, opener, accountant.pricer, accountant.counter, deployments)
        dispatcher.gate = gateway.control
        gateway.semantic = build_semantic_layer(settings, cache, gateway.load_embedder, environment)
        if gateway.semantic is not None:
            await gateway.semantic.start()
        if embedding_deployments := build_embedding_deployments(settings, environment):
            gateway.upstream_embeddings = EmbeddingsDispatcher(embedding_deployments, _token_count())
        gateway.bodies = build_body_store(settings, environment)
        gateway.students = students
        if router_configs(settings.routing):
            gateway.routers = await asyncio.to_thread(RouterSet.load, settings.routing, catalog.serves)
        if settings.batch.enabled:
            gateway.batches = await asyncio.to_thread(build_batches, settings, environment, GatewayLines(gateway),
                                                      catalog, accountant, opener)
            await gateway.batches.runner.start()
        app.state.gateway = gateway
        log.info("serving %d deployments: %s", len(deployments), ", ".join(d.name for d in deployments))
        try:
            yield
        finally:
            await _close(gateway, deployments)
            await asyncio.to_thread(opener.close)

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        _by_method("/v1/files", POST=create_file, GET=list_files),
        _by_method("/v1/files/{file_id}", GET=retrieve_file, DELETE=delete_file),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        _by_method("/v1/batches", POST=create_batch, GET=list_batches),
        Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *_control_routes(),
    ]
    middleware = [Middleware(AuthMiddleware)]
    if settings.control.cors_origins:  # CORS is off unless origins are configured
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.control.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type"]))
    return Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan, middleware=middleware)


async def _close(gateway: Gateway, deployments: list[Deployment]) -> None:
    """Stop everything the lifespan opened: batch work first (its lines stay pending), then the ledger writer."""
    if gateway.batches is not None:
        await gateway.batches.runner.stop()
    await gateway.ledger.stop()
    await _aclose(gateway.upstream_embeddings, gateway.control, gateway.semantic, gateway.cache)
    if gateway.students is not None:
        gateway.students.close()
    if gateway.bodies is not None:
        gateway.bodies.close()
    for dep in deployments:
        close = getattr(dep.provider, "aclose", None)
        if close is not None:
            await close()


def _control_routes() -> list[Route]:
    """Keys, spend and the dashboard (docs/control.md), and the API's own description."""
    return [
        Route("/v1/key", admin.own_key, methods=["GET"]),
        Route("/v1/spend", admin.own_spend, methods=["GET"]),
        _by_method("/admin/keys", GET=admin.list_keys, POST=admin.create_key),
        _by_method("/admin/keys/{key_id}", GET=admin.get_key, PATCH=admin.update_key),
        Route("/admin/keys/{key_id}/revoke", admin.revoke_key, methods=["POST"]),
        Route("/admin/teams", admin.list_teams, methods=["GET"]),
        Route("/admin/teams/{name}", admin.put_team, methods=["PUT"]),
        Route("/admin/spend", admin.admin_spend, methods=["GET"]),
        Route("/ui", ui.ui_page, methods=["GET"]),
        Route("/ui/login", ui.ui_login, methods=["POST"]),
        Route("/ui/logout", ui.ui_logout, methods=["POST"]),
        Route("/ui/api/summary", ui.ui_summary, methods=["GET"]),
        Route("/ui/static/{name}", ui.ui_static, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]


def _by_method(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route for several methods, so a 405 names all of them in its ``Allow`` header."""

    async def endpoint(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, endpoint, methods=list(handlers))


async def _aclose(*parts: Any) -> None:
    """Close what was built, in order (None: not configured)."""
    for part in parts:
        if part is not None:
            await part.aclose()


def _durable_ack(ack: str, postgres: bool) -> bool:
    """``ledger.ack``: auto is durable on PostgreSQL (replicas), queued on the embedded SQLite file."""
    return ack == "durable" or (ack == "auto" and postgres)


def _token_count() -> TokenCount:
    """Offline token counts (cl100k) that apportion a coalesced embeddings call's usage among its requests."""
    from tokenomy.tokens.counter import TokenCounter

    counter = TokenCounter()
    return lambda text: counter.count_text(text, "text-embedding-3-small")


def _queue_depths(deployments: list[Deployment]) -> dict[str, int]:
    return {d.name: int(getattr(d.provider, "queue_depth", 0)) for d in deployments}


def app_from_environment() -> Starlette:
    """The app for a server process started by ``tokenomy serve`` (granian): Settings arrive resolved, as JSON."""
    import msgspec

    from tokenomy.config.settings import Settings

    raw = os.environ.get("TOKENOMY_RESOLVED_SETTINGS")
    settings = msgspec.json.decode(raw, type=Settings) if raw else Settings()
    return create_app(settings)
