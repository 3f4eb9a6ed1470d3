"""Map an upstream's HTTP status (and error body) onto our error tree. Shared by every HTTP provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tokenomy.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)


def error_for_status(status: int, body: bytes, headers: Mapping[str, str], deployment: str) -> UpstreamError:
    """The UpstreamError for a non-2xx answer, carrying the upstream's own message and any retry-after."""
    message = upstream_message(body) or f"HTTP {status}"
    kwargs: dict[str, Any] = {"deployment": deployment, "upstream_status": status}
    if status == 429:
        return UpstreamRateLimitError(message, retry_after_s=retry_after(headers), **kwargs)
    if status in (503, 529):
        return UpstreamUnavailableError(message, retry_after_s=retry_after(headers), **kwargs)
    if status in (408, 504):
        return UpstreamTimeoutError(message, **kwargs)
    if status in (401, 403, 404):
        return UpstreamAuthError(message, **kwargs)
    if status in (400, 413, 422):
        param = upstream_param(body)
        return UpstreamRejectedError(f"upstream rejected the request: {message}", param=param, **kwargs)
    return UpstreamError(message, **kwargs)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds form); None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def upstream_message(body: bytes) -> str:
    err = _error_object(body)
    if err and isinstance(err.get("message"), str):
        return str(err["message"])[:500]
    return body[:200].decode("utf-8", "replace").strip()


def upstream_param(body: bytes) -> str | None:
    err = _error_object(body)
    param = err.get("param") if err else None
    return param if isinstance(param, str) else None
