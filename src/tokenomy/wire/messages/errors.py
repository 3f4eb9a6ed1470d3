"""Errors in the Anthropic Messages API's shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``,
the error ``type`` chosen by the HTTP status as Anthropic's API does. The status stays ours (a spent budget is still
429), and so does the error's own code, which the door sends as the ``x-tokenomy-error-code`` header."""

from __future__ import annotations

from typing import Any

from tokenomy.errors import TokenomyError, UpstreamTimeoutError, UpstreamUnavailableError

_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
              403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
              409: "invalid_request_error", 413: "request_too_large", 422: "invalid_request_error",
              429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error"}


def error_type(exc: TokenomyError) -> str:
    if isinstance(exc, UpstreamUnavailableError) or exc.code == "upstream_unavailable":
        return "overloaded_error"
    if isinstance(exc, UpstreamTimeoutError):
        return "timeout_error"
    return _BY_STATUS.get(exc.status, "api_error" if exc.status >= 500 else "invalid_request_error")


def error_body(exc: TokenomyError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type(exc), "message": exc.message}}
    if request_id:
        body["request_id"] = request_id
    return body
