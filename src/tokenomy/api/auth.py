"""Authentication at the door: a pure ASGI middleware that resolves every ``/v1`` request's caller (master key,
virtual key, or anonymous when no master key is set) before any endpoint runs, and answers 401 in OpenAI's error
format (Anthropic's on the Messages door). The endpoints read the caller with ``principal_of(request)``."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tokenomy.api.responses import error_response, request_id
from tokenomy.errors import TokenomyError

_GUARDED = ("/v1/", "/chat/completions")


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(_GUARDED):
            gateway = getattr(scope["app"].state, "gateway", None)
            if gateway is not None:
                try:
                    principal = await gateway.authenticate(Headers(scope=scope))
                except TokenomyError as exc:
                    await error_response(exc, request_id(Request(scope)), str(scope.get("path", "")))(
                        scope, receive, send)
                    return
                scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
