"""The one place errors become HTTP responses: in OpenAI's error format, or Anthropic's on the Messages door."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tokenomy.api.disconnect import ClientGoneError
from tokenomy.api.responses import error_response, request_id
from tokenomy.errors import MethodNotAllowedError, RouteNotFoundError, TokenomyError

log = logging.getLogger("tokenomy.api")


async def on_tokenomy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TokenomyError)
    rid = getattr(request.state, "request_id", None) or request_id(request)
    if exc.status >= 500 and not getattr(exc, "outage", False):  # outages have their own line per interval
        log.warning("%s %s -> %s %s: %s", request.method, request.url.path, exc.status, exc.code, exc.message)
    return error_response(exc, rid, request.url.path)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rid = request_id(request)
    if exc.status_code == 404:
        return error_response(RouteNotFoundError(f"unknown URL: {request.method} {request.url.path}"), rid,
                              request.url.path)
    if exc.status_code == 405:
        response = error_response(MethodNotAllowedError(f"method {request.method} is not allowed on "
                                                        f"{request.url.path}"), rid, request.url.path)
        if exc.headers and "Allow" in exc.headers:  # RFC 9110: a 405 lists the methods that are allowed
            response.headers["allow"] = exc.headers["Allow"]
        return response
    err = TokenomyError(str(exc.detail))
    err.status = exc.status_code
    err.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return error_response(err, rid, request.url.path)


async def on_client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up while sending its body: one line at INFO (nobody is left to answer), not a traceback."""
    log.info("%s %s: the client left before its body was read", request.method, request.url.path)
    return Response(status_code=499)


async def on_gone(request: Request, exc: Exception) -> Response:
    """The client left while its answer was made: the core recorded it; nobody is left to answer."""
    return Response(status_code=499)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    rid = getattr(request.state, "request_id", None) or request_id(request)
    log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    return error_response(TokenomyError(f"internal error (request {rid}); see the gateway log"), rid,
                          request.url.path)


HANDLERS = {TokenomyError: on_tokenomy_error, HTTPException: on_http_error, ClientDisconnect: on_client_gone,
            ClientGoneError: on_gone,
            Exception: on_unexpected}
