"""Response construction shared by the endpoints: JSON bodies via orjson, the x-tokenomy-* and x-request-id headers,
and the request id itself."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tokenomy.errors import RequestTooLargeError, TokenomyError

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: Request) -> str:
    """The caller's ``x-request-id`` when it is a sane token, else a new one."""
    given = request.headers.get("x-request-id")
    if given and _SAFE_ID.fullmatch(given):
        return given
    return "req_" + os.urandom(12).hex()


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: TokenomyError, request_id_value: str) -> Response:
    headers = {"x-request-id": request_id_value}
    retry_after = getattr(exc, "retry_after_s", None)
    if exc.status == 429 and retry_after:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    headers.update(getattr(exc, "headers", None) or {})
    return json_response(exc.to_body(), status=exc.status, headers=headers)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing (413) anything over ``max_bytes`` before reading it all."""
    declared = request.headers.get("content-length")
    too_large = RequestTooLargeError(f"request body is {declared or 'over ' + str(max_bytes)} bytes; "
                                     f"the limit is {max_bytes}")
    # Up to 4x the limit the body is drained and discarded, so the client reads a clean 413 rather than a reset.
    if declared and declared.isdigit() and int(declared) > 4 * max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 4 * max_bytes:
            raise too_large
        if size <= max_bytes:
            chunks.append(chunk)
    if size > max_bytes:
        raise too_large
    return b"".join(chunks)
