"""What happened during one request, gathered as it happens: each upstream call's timing, outcome and usage.

The dispatcher opens a ``CallTrace`` per upstream attempt; the stream relay feeds it chunks; when the request is
over, ``ledger.accounting.Accountant`` turns the trace into ledger rows. No I/O here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokenomy.config.settings import DeploymentConfig
from tokenomy.errors import TokenomyError
from tokenomy.ids import random_hex


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class CallTrace:
    deployment: DeploymentConfig
    attempt: int
    started_us: int = field(default_factory=now_us)
    id: str = field(default_factory=lambda: "call_" + random_hex(16))
    first_token_us: int | None = None
    ended_us: int | None = None
    outcome: str = "open"  # open | ok | error | disconnected
    error: TokenomyError | None = None
    usage: dict[str, Any] | None = None
    text: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    on_end: Callable[[], None] | None = None  # told once when the call is over (the dispatcher's in-flight gauge)
    batch: bool = False  # ran in the provider's batch API: priced at its batch rates

    def _close(self, outcome: str, error: TokenomyError | None) -> None:
        if self.outcome != "open":
            return
        self.outcome, self.error, self.ended_us = outcome, error, now_us()
        if self.on_end is not None:
            self.on_end()

    def fail(self, exc: TokenomyError) -> None:
        self._close("error", exc)

    def complete(self, completion: dict[str, Any]) -> None:
        """A whole (non-stream) answer arrived."""
        self._close("ok", None)
        self.first_token_us = self.ended_us
        usage = completion.get("usage")
        self.usage = usage if isinstance(usage, dict) else None
        for choice in completion.get("choices") or ():  # kept for offline counting if the usage is unusable
            message = choice.get("message") or {}
            self.text.append(str(message.get("content") or ""))
            self.tool_calls.extend(message.get("tool_calls") or ())

    def chunk(self, chunk: dict[str, Any]) -> None:
        """One streamed chunk passed by (usage is kept; text is kept in case the usage never comes)."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if self.first_token_us is None:
                    self.first_token_us = now_us()
                self.text.append(content)
            for call in delta.get("tool_calls") or ():
                if self.first_token_us is None:
                    self.first_token_us = now_us()
                self.tool_calls.append(call)

    def end_stream(self, outcome: str, error: TokenomyError | None = None) -> None:
        self._close(outcome, error)


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What a cache hit served: the model and deployment that first produced it, and that answer's usage."""

    model: str
    deployment: str
    tier: str
    usage: dict[str, Any]


@dataclass(slots=True)
class DistillMark:
    """A promoted student's part in a request: ``mode`` is shadow (teacher served, student compared), live (student
    served), cascade (student not confident, teacher served) or spot (a live spot-check: teacher served, compared)."""

    task: str
    mode: str
    answer: str | None
    confidence: float | None
    agreed: bool | None = None


@dataclass(slots=True)
class RequestTrace:
    id: str
    endpoint: str
    requested_model: str
    stream: bool
    body: dict[str, Any]
    key_id: str | None = None
    tenant: str | None = None  # the key's team
    tags: str | None = None  # the key's metadata tags as JSON, copied into the ledger row (chargeback)
    client_request_id: str | None = None  # the client's own id (x-client-request-id / x-request-id), recorded only
    cache_status: str = "none"
    route_reason: str | None = None
    route_estimate: tuple[str, float] | None = None  # (model, USD) a router chose it at; settled when recorded
    started_us: int = field(default_factory=now_us)
    calls: list[CallTrace] = field(default_factory=list)
    client_disconnected: bool = False
    cached: CachedAnswer | None = None
    distill: DistillMark | None = None

    def step(self, body: dict[str, Any]) -> RequestTrace:
        """A blank trace of one step of this request (a cascade's cheap or frontier ask), to :meth:`absorb` later:
        each step is admitted and settled on its own cost, while the ledger gets one row for the request."""
        return RequestTrace(id=self.id, endpoint=self.endpoint, requested_model=self.requested_model, stream=False,
                            body=body, key_id=self.key_id, tenant=self.tenant, tags=self.tags,
                            client_request_id=self.client_request_id, started_us=self.started_us)

    def absorb(self, step: RequestTrace) -> None:
        """Take a finished step's calls (numbered after this trace's own) and its cache outcome."""
        for call in step.calls:
            call.attempt = len(self.calls) + 1
            self.calls.append(call)
        self.cache_status, self.cached = step.cache_status, step.cached

    def begin_call(self, deployment: DeploymentConfig) -> CallTrace:
        call = CallTrace(deployment=deployment, attempt=len(self.calls) + 1)
        self.calls.append(call)
        return call

    @property
    def served(self) -> CallTrace | None:
        """The call whose answer the client got (the last one that did not fail before answering)."""
        for call in reversed(self.calls):
            if call.outcome != "error" or call.first_token_us is not None:
                return call
        return None
