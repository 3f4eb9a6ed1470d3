"""Ledger rows: one ``CallRow`` per upstream call, one ``RequestRow`` per served request. Plain data, no I/O.

Money is Decimal USD in memory and integer pico-USD (1e-12) in the store, so sums are exact on every engine.
Times are epoch microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy.pricing.cost import TokenUsage

PICO = Decimal("1e12")


def to_pusd(usd: Decimal | None) -> int | None:
    return None if usd is None else int((usd * PICO).to_integral_value())


def from_pusd(pusd: int | None) -> Decimal | None:
    return None if pusd is None else Decimal(pusd) / PICO


@dataclass(slots=True)
class CallRow:
    id: str
    request_id: str
    attempt: int
    started_us: int
    ended_us: int
    deployment: str
    provider: str
    model: str
    tier: str
    outcome: str  # ok | error | disconnected
    tokens: TokenUsage
    usage_source: str  # upstream | counted | none
    cost_usd: Decimal | None
    first_token_us: int | None = None
    upstream_status: int | None = None
    error_type: str | None = None
    error_code: str | None = None

    def as_db(self) -> dict[str, Any]:
        t = self.tokens
        return {
            "id": self.id, "request_id": self.request_id, "attempt": self.attempt, "started_us": self.started_us,
            "first_token_us": self.first_token_us, "ended_us": self.ended_us, "deployment": self.deployment,
            "provider": self.provider, "model": self.model, "tier": self.tier, "outcome": self.outcome,
            "upstream_status": self.upstream_status, "error_type": self.error_type, "error_code": self.error_code,
            "input_tokens": t.input_tokens, "cached_read_tokens": t.cached_read_tokens,
            "cache_write_5m_tokens": t.cache_write_5m_tokens, "cache_write_1h_tokens": t.cache_write_1h_tokens,
            "output_tokens": t.output_tokens, "reasoning_tokens": t.reasoning_tokens,
            "usage_source": self.usage_source, "cost_pusd": to_pusd(self.cost_usd),
        }


@dataclass(slots=True)
class RequestRow:
    id: str
    started_us: int
    ended_us: int
    endpoint: str
    requested_model: str
    stream: bool
    status: int
    cache_status: str
    attempts: int
    tokens: TokenUsage
    usage_source: str
    cost_usd: Decimal | None
    counterfactual_usd: Decimal | None
    client_disconnected: bool = False
    first_token_us: int | None = None
    key_id: str | None = None
    tenant: str | None = None
    served_model: str | None = None
    deployment: str | None = None
    tier: str | None = None
    provider: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    route_reason: str | None = None
    tags: str | None = None
    distill_task: str | None = None
    distill_mode: str | None = None
    distill_confidence: float | None = None
    distill_agreed: bool | None = None
    client_request_id: str | None = None  # the client's own id for the request (recorded, never a key)

    @property
    def saving_usd(self) -> Decimal | None:
        if self.cost_usd is None or self.counterfactual_usd is None:
            return None
        return self.counterfactual_usd - self.cost_usd

    def as_db(self) -> dict[str, Any]:
        t = self.tokens
        return {
            "id": self.id, "started_us": self.started_us, "first_token_us": self.first_token_us,
            "ended_us": self.ended_us, "key_id": self.key_id, "tenant": self.tenant, "endpoint": self.endpoint,
            "requested_model": self.requested_model, "served_model": self.served_model,
            "deployment": self.deployment, "tier": self.tier, "provider": self.provider, "stream": int(self.stream),
            "status": self.status, "error_type": self.error_type, "error_code": self.error_code,
            "cache_status": self.cache_status, "route_reason": self.route_reason, "attempts": self.attempts,
            "input_tokens": t.input_tokens, "cached_read_tokens": t.cached_read_tokens,
            "cache_write_tokens": t.cache_write_tokens, "output_tokens": t.output_tokens,
            "reasoning_tokens": t.reasoning_tokens, "usage_source": self.usage_source,
            "cost_pusd": to_pusd(self.cost_usd),
            "counterfactual_pusd": to_pusd(self.counterfactual_usd), "saving_pusd": to_pusd(self.saving_usd),
            "client_disconnected": int(self.client_disconnected), "tags": self.tags,
            "distill_task": self.distill_task, "distill_mode": self.distill_mode,
            "distill_confidence": self.distill_confidence,
            "distill_agreed": None if self.distill_agreed is None else int(self.distill_agreed),
            "client_request_id": self.client_request_id,
        }


@dataclass(slots=True)
class LedgerEntry:
    """What one served request leaves behind: its row and the rows of every upstream call it made."""

    request: RequestRow
    calls: list[CallRow]

    def as_json(self) -> dict[str, Any]:
        return {"request": self.request.as_db(), "calls": [c.as_db() for c in self.calls]}
