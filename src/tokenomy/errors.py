"""Every error tokenomy raises, in one tree.

Request-time errors carry the HTTP status and the OpenAI error ``type`` they render as; the API layer has one
handler that turns any of them into ``{"error": {"message", "type", "param", "code"}}``. Provider and store errors
are converted into this tree at the boundary where they happen (``raise X from exc``), never further in.
"""

from __future__ import annotations

from dataclasses import dataclass


class TokenomyError(Exception):
    """Base of the tree. ``status``/``type``/``code`` say how it renders on the HTTP side."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    request_id: str | None = None  # the ledger request id of a request the gateway core refused or failed

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# --- configuration and command-line errors (not request-time) -------------------------------------------------


class ConfigError(TokenomyError):
    """The configuration (file, env or flags) is invalid; the message names the key and the bad value."""

    code = "config_error"


class OutcomeDataError(ConfigError):
    """An outcomes file, or one of its rows or price entries, is malformed; the message says where."""

    code = "outcome_data_error"


class PlanDataError(ConfigError):
    """A GPU price file, throughput file or audit summary is unreadable or malformed; the message says where."""

    code = "plan_data_error"


class AuditError(ConfigError):
    """A log cannot be audited at all (unreadable file, unknown format); bad lines are counted, not raised."""

    code = "audit_error"


class TargetError(ConfigError):
    """A routing target (``share=S``, ``quality=Q``, ``budget=B``) is malformed or out of range."""

    code = "invalid_routing_target"


class RouterFileError(ConfigError):
    """A router directory is missing, incomplete or was written by an incompatible version."""

    code = "router_file_error"


class GatewayClientError(ConfigError):
    """A command that talks to a running gateway could not reach it, or the gateway refused the call."""

    code = "gateway_client_error"


class DistillError(ConfigError):
    """A distillation input (log, data or student directory, task name, option) is unusable; the message says why."""

    code = "distill_error"


# --- client errors ----------------------------------------------------------------------------------------------


class InvalidRequestError(TokenomyError):
    status = 400
    type = "invalid_request_error"


class AuthenticationError(TokenomyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFoundError(TokenomyError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RouteNotFoundError(TokenomyError):
    status = 404
    type = "invalid_request_error"
    code = "unknown_url"


class MethodNotAllowedError(TokenomyError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTooLargeError(TokenomyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaTypeError(InvalidRequestError):
    """A body whose Content-Type the endpoint does not take (a JSON body must say ``application/json``)."""

    status = 415
    code = "unsupported_media_type"


class ForeignOriginError(TokenomyError):
    """A gateway without a master key refused a request for a Host or from an Origin that is not loopback (nor
    configured): what a web page in the user's browser, or a DNS-rebound name, would send."""

    status = 403
    type = "invalid_request_error"
    code = "foreign_origin"


class RateLimitError(TokenomyError):
    """A key's, team's or the gateway's own rate limit is spent; ``headers`` are the ``x-ratelimit-*`` figures."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float | None = None, headers: dict[str, str] | None = None,
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after_s = retry_after_s
        self.headers = dict(headers or {})


class InsufficientQuotaError(TokenomyError):
    """A key's or team's budget cannot cover this request's worst-case cost (refused before any upstream call)."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class PermissionDeniedError(TokenomyError):
    """The key is valid but may not do this (a model outside its allowed list, an admin route)."""

    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class ModelNotAllowedError(PermissionDeniedError):
    """The key may not use the model it asked for, or any deployment that would answer it."""

    code = "model_not_allowed"


class KeyNotFoundError(TokenomyError):
    """No virtual key (or team) has this id, name or value."""

    status = 404
    type = "invalid_request_error"
    code = "key_not_found"


class CapabilityError(TokenomyError):
    """The chosen deployment cannot do what the request asks (e.g. tools on a model without them)."""

    status = 400
    type = "invalid_request_error"
    code = "unsupported_parameter"


class BatchInputError(InvalidRequestError):
    """A batch input file has malformed lines; ``lines`` lists the first problems (OpenAI's batch error objects)."""

    code = "invalid_batch_input"

    def __init__(self, message: str, *, lines: list[dict[str, object]] | None = None) -> None:
        super().__init__(message, param="file")
        self.lines = lines or []


class NotFoundError(TokenomyError):
    """A file or batch id that does not exist (or was deleted)."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class BatchStateError(InvalidRequestError):
    """The batch cannot do that in its current state (e.g. cancel a completed batch)."""

    status = 409
    code = "invalid_batch_state"


class RouteTargetError(InvalidRequestError):
    """The ``x-tokenomy-route-target`` header is not a valid routing target."""

    code = "invalid_route_target"


# --- upstream errors --------------------------------------------------------------------------------------------


class StoreUnavailableError(TokenomyError):
    """A shared store (Redis, PostgreSQL) cannot be reached. Logged once per outage by its ``OutageLog``, not once
    per request."""

    status = 503
    type = "server_error"
    code = "store_unavailable"
    outage = True


class DatabaseError(StoreUnavailableError):
    """The database (the ledger's SQLite file or PostgreSQL) failed a read or a transaction; ``db.engine`` raises it
    for every driver error, and each store says what it was doing."""

    code = "database_error"


class UpstreamError(TokenomyError):
    """An upstream call failed. ``retryable`` says whether the same request may succeed on a retry or elsewhere."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        deployment: str = "",
        upstream_status: int | None = None,
        retry_after_s: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.deployment = deployment
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s


class StreamBrokenError(UpstreamError):
    """An upstream stream broke after its first chunk had gone to the client: the door ends the stream with its
    API's error event (the status is already sent)."""

    def __init__(self, cause: UpstreamError) -> None:
        super().__init__(f"upstream stream broke: {cause.message}", deployment=cause.deployment,
                         upstream_status=cause.upstream_status)
        self.type, self.code = cause.type, cause.code


class UpstreamConnectionError(UpstreamError):
    code = "upstream_connection_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamUnavailableError(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamBusyError(UpstreamUnavailableError):
    """A deployment's own queue is full (the in-process model): the next deployment is tried at once, and a client
    left with no other is told when to come back (``retry_after_s``: ``Retry-After`` on the 503)."""

    code = "upstream_busy"


class UpstreamRateLimitError(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "upstream_rate_limited"


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials or does not know the model: a deployment problem, try the next one."""

    code = "upstream_auth_error"


class UpstreamRejectedError(UpstreamError):
    """The upstream judged the request itself invalid (400/413/422): retrying elsewhere would not help."""

    status = 400
    type = "invalid_request_error"
    code = "upstream_rejected"
    retryable = False


class UpstreamProtocolError(UpstreamError):
    """The upstream answered with something that is not the protocol (bad JSON, missing fields)."""

    code = "upstream_protocol_error"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed upstream attempt, as reported when every attempt failed."""

    deployment: str
    error: UpstreamError

    def describe(self) -> str:
        status = f"HTTP {self.error.upstream_status}" if self.error.upstream_status else self.error.code
        return f"{self.deployment}: {status}: {self.error.message}"


class AllUpstreamsFailedError(UpstreamError):
    """Every deployment in the chain failed; the message lists each attempt."""

    def __init__(self, model: str, attempts: list[Attempt]) -> None:
        listed = "; ".join(a.describe() for a in attempts) or "no deployment was available"
        super().__init__(f"all {len(attempts)} upstream attempts for '{model}' failed: {listed}")
        self.attempts = attempts
        self.status, self.type, self.code = _summarise(attempts)
        waits = [a.error.retry_after_s for a in attempts if a.error.retry_after_s is not None]
        if self.status in (429, 503) and waits:
            self.retry_after_s = min(waits)


def _summarise(attempts: list[Attempt]) -> tuple[int, str, str]:
    errors = [a.error for a in attempts]
    if errors and all(isinstance(e, UpstreamRateLimitError) for e in errors):
        return 429, "rate_limit_error", "upstream_rate_limited"
    if errors and all(isinstance(e, UpstreamTimeoutError) for e in errors):
        return 504, "upstream_error", "upstream_timeout"
    if not errors or any(isinstance(e, UpstreamUnavailableError) for e in errors):
        return 503, "upstream_error", "upstream_unavailable"
    return 502, "upstream_error", "upstream_error"
