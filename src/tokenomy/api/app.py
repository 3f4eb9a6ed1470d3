"""The app factory: ``create_app(settings)`` builds the Starlette app; nothing is opened until its lifespan starts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokenomy.api import admin, ui
from tokenomy.api.auth import AuthMiddleware
from tokenomy.api.batches import cancel_batch, create_batch, list_batches, retrieve_batch
from tokenomy.api.chat_completions import chat_completions
from tokenomy.api.embeddings import embeddings
from tokenomy.api.errors import HANDLERS
from tokenomy.api.feedback import feedback
from tokenomy.api.files import create_file, delete_file, file_content, list_files, retrieve_file
from tokenomy.api.guard import LoopbackGuard
from tokenomy.api.health import healthz, readyz
from tokenomy.api.heap import start_up_frozen
from tokenomy.api.messages import count_tokens, create_message
from tokenomy.api.metrics import metrics_endpoint
from tokenomy.api.models import get_model, list_models
from tokenomy.api.openai_responses import create_response, delete_response, list_input_items, retrieve_response
from tokenomy.api.openapi import openapi_endpoint
from tokenomy.api.throttle import LoginThrottle
from tokenomy.config.settings import Settings
from tokenomy.gateway.build import running_gateway


def create_app(settings: Settings, env: Mapping[str, str] | None = None) -> Starlette:
    """An ASGI app serving the OpenAI-compatible API for ``settings``; ``env`` supplies provider keys."""
    environment = dict(os.environ if env is None else env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running_gateway(settings, environment) as gateway:
            app.state.gateway = gateway
            app.state.login_throttle = LoginThrottle()
            with start_up_frozen():  # the full collections' pauses no longer scan what start-up built (heap.py)
                yield

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", create_message, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        _by_method("/v1/responses/{response_id}", GET=retrieve_response, DELETE=delete_response),
        Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
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
    if not settings.control.master_key:  # loopback mode: no web page may use it (api/guard.py)
        middleware.insert(0, Middleware(LoopbackGuard, settings=settings))
    if settings.control.cors_origins:  # CORS is off unless origins are configured
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.control.cors_origins),
                                     allow_methods=["GET", "POST", "DELETE"],
                                     allow_headers=["authorization", "content-type", "x-api-key",
                                                    "anthropic-version", "anthropic-beta"]))
    return Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan, middleware=middleware)


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


def app_from_environment() -> Starlette:
    """The app for a server process started by ``tokenomy serve`` (granian): Settings arrive resolved, as JSON."""
    import msgspec

    from tokenomy.config.settings import Settings

    raw = os.environ.get("TOKENOMY_RESOLVED_SETTINGS")
    settings = msgspec.json.decode(raw, type=Settings) if raw else Settings()
    return create_app(settings)
