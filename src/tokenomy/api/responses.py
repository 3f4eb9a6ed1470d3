"""What every door shares: the gateway and the caller of a request, JSON bodies via orjson, error bodies with their
headers, and a body read under its size limit."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.control.auth import ANONYMOUS, Principal
from tokenomy.errors import InsufficientQuotaError, RequestTooLargeError, TokenomyError
from tokenomy.gateway.core import Gateway, new_request_id
from tokenomy.gateway.requests import Caller
from tokenomy.wire.messages.errors import error_body

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
ANTHROPIC_PATHS = ("/v1/messages",)  # the routes that answer in Anthropic's shapes, errors included


def principal_of(request: Request) -> Principal:
    """The caller the auth middleware resolved (anonymous on an open gateway)."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else ANONYMOUS


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def client_request_id(request: Request) -> str | None:
    """The client's own id for a request (``x-client-request-id``, else ``x-request-id``) when it is a sane token:
    recorded in the ledger beside the server's id and echoed back, never used as a key."""
    given = request.headers.get("x-client-request-id") or request.headers.get("x-request-id")
    return given if given and _SAFE_ID.fullmatch(given) else None


def caller_of(request: Request) -> Caller:
    return Caller(principal=principal_of(request), client_request_id=client_request_id(request),
                  options=request.headers)


def request_id(request: Request) -> str:
    """The id of a response that is no ledger request (files, batches, admin, errors before the core): new."""
    found = getattr(request.state, "request_id", None)
    return found if isinstance(found, str) else new_request_id()


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: TokenomyError, request_id_value: str, path: str = "") -> Response:
    """The error in the format of the API its ``path`` belongs to: Anthropic's under ``/v1/messages`` (with our
    error code in ``x-tokenomy-error-code``), OpenAI's everywhere else. A spent budget says ``x-should-retry:
    false``, which the official SDKs honour (a retry could only be refused again)."""
    rid = exc.request_id or request_id_value
    headers = {"x-request-id": rid}
    retry_after = getattr(exc, "retry_after_s", None)
    if exc.status in (429, 503) and retry_after:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    if isinstance(exc, InsufficientQuotaError):
        headers["x-should-retry"] = "false"
    headers.update(getattr(exc, "headers", None) or {})
    if path.startswith(ANTHROPIC_PATHS):
        headers["x-tokenomy-error-code"] = exc.code or exc.type
        return json_response(error_body(exc, rid), status=exc.status, headers=headers)
    return json_response(exc.to_body(), status=exc.status, headers=headers)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) anything over ``max_bytes`` before reading it all."""
    declared = request.headers.get("content-length")
    too_large = RequestTooLargeError(f"request body is {declared or 'over ' + str(max_bytes)} bytes; "
                                     f"the limit is {max_bytes}")
    # Up to 4x the limit the body is drained and discarded, so the client reads a clean 413 rather than a reset.
    if declared and declared.isdigit() and int(declared) > 4 * max_bytes:
        raise too_large
    keep = not (declared and declared.isdigit() and int(declared) > max_bytes)  # a body declared too large: drained
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 4 * max_bytes:
            raise too_large
        if keep and size <= max_bytes:
            chunks.append(chunk)
    if size > max_bytes:
        raise too_large
    return b"".join(chunks)
