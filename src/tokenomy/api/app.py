"""The app factory: ``create_app(settings)`` builds the Starlette app; nothing is opened until its lifespan starts."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from tokenomy.api.chat_completions import chat_completions
from tokenomy.api.embeddings import embeddings
from tokenomy.api.errors import HANDLERS
from tokenomy.api.feedback import feedback
from tokenomy.api.health import healthz
from tokenomy.api.metrics import Metrics, metrics_endpoint
from tokenomy.api.models import get_model, list_models
from tokenomy.api.state import Gateway
from tokenomy.cache.setup import build_exact_cache, build_semantic_layer
from tokenomy.config.settings import Settings
from tokenomy.dispatch.catalog import Catalog
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.distill.bodies import build_body_store
from tokenomy.distill.serve import StudentSet
from tokenomy.ledger.setup import build_accountant, open_writer
from tokenomy.providers.registry import Deployment, build_deployments
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
        writer = await asyncio.to_thread(open_writer, settings, environment)
        await writer.start()
        metrics = Metrics()
        metrics.watch(dispatcher.inflight, lambda: _queue_depths(deployments), lambda: writer.queued)
        accountant = build_accountant(settings, environment)
        cache = build_exact_cache(settings, environment)
        gateway = Gateway(settings=settings, dispatcher=dispatcher, accountant=accountant, ledger=writer,
                          metrics=metrics, cache=cache)
        gateway.semantic = build_semantic_layer(settings, cache, gateway.load_embedder)
        gateway.bodies = build_body_store(settings, environment)
        gateway.students = students
        if router_configs(settings.routing):
            gateway.routers = await asyncio.to_thread(RouterSet.load, settings.routing, catalog.serves)
        app.state.gateway = gateway
        log.info("serving %d deployments: %s", len(deployments), ", ".join(d.name for d in deployments))
        try:
            yield
        finally:
            await writer.stop()
            if gateway.students is not None:
                gateway.students.close()
            if gateway.bodies is not None:
                gateway.bodies.close()
            if cache is not None:
                await cache.aclose()
            for dep in deployments:
                close = getattr(dep.provider, "aclose", None)
                if close is not None:
                    await close()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)


def _queue_depths(deployments: list[Deployment]) -> dict[str, int]:
    return {d.name: int(getattr(d.provider, "queue_depth", 0)) for d in deployments}


def app_from_environment() -> Starlette:
    """The app for a server process started by ``tokenomy serve`` (granian): Settings arrive resolved, as JSON."""
    import msgspec

    from tokenomy.config.settings import Settings

    raw = os.environ.get("TOKENOMY_RESOLVED_SETTINGS")
    settings = msgspec.json.decode(raw, type=Settings) if raw else Settings()
    return create_app(settings)
