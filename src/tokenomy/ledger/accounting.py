"""Turn a finished ``RequestTrace`` into ledger rows with exact costs.

Per upstream call: tokens from the provider's own usage object (normalised per provider), or, when the upstream
gave none (a stream cut short, a server without usage), counted offline from the prompt and the text seen; cost from
the price in force when the call started. Per request: the sum of its calls, and the counterfactual cost: what the
requested model would have cost for the same tokens, or the configured reference model when the client asked for a
tier or a model without a known price.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow
from tokenomy.ledger.trace import CallTrace, RequestTrace, now_us
from tokenomy.pricing.cost import TokenUsage, UsageError

log = logging.getLogger("tokenomy.ledger")
_NOTHING = TokenUsage()


class Pricer(Protocol):
    """Prices tokens: a deployment's own price (override or catalogue), or any model name's."""

    def deployment_cost(self, deployment: Any, tokens: TokenUsage, at: datetime, *,
                        batch: bool = False) -> Decimal | None: ...

    def model_cost(self, model: str, tokens: TokenUsage, at: datetime, *, batch: bool = False) -> Decimal | None: ...

    def tokens(self, provider_kind: str, usage: dict[str, Any]) -> TokenUsage: ...


class TokenCounter(Protocol):
    def count_messages(self, messages: list[dict[str, Any]], model: str,
                       tools: list[dict[str, Any]] | None = None) -> int: ...

    def count_completion(self, text: str, tool_calls: list[dict[str, Any]] | None, model: str) -> int: ...

    def count_text(self, text: str, model: str) -> int: ...


class Accountant:
    def __init__(self, pricer: Pricer, counter: TokenCounter | None, reference_model: str | None) -> None:
        self._pricer = pricer
        self._counter = counter
        self._reference = reference_model

    @property
    def pricer(self) -> Pricer:
        return self._pricer

    @property
    def counter(self) -> TokenCounter | None:
        """The offline token counter (None when tiktoken is not installed)."""
        return self._counter

    def entry(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        calls = [self._call_row(trace, c) for c in trace.calls]
        served = trace.served
        total = sum((row.tokens for row in calls), TokenUsage())
        costs = [row.cost_usd for row in calls]
        cost = None if any(c is None for c in costs) else sum((c for c in costs if c is not None), Decimal(0))
        at = _at(trace.started_us)
        served_tokens = next((r.tokens for r in reversed(calls) if r.outcome != "error"), TokenUsage())
        if trace.cached is not None:  # a cache hit: no upstream cost; the saving is the answer's price
            served_tokens = self._cached_tokens(trace.cached.usage)
            cost = Decimal(0)
        counterfactual = self._pricer.model_cost(trace.requested_model, served_tokens, at)
        if counterfactual is None and self._reference and not trace.endpoint.endswith("embeddings"):
            counterfactual = self._pricer.model_cost(self._reference, served_tokens, at)
        sources = {row.usage_source for row in calls if row.outcome != "error"}
        request = RequestRow(
            id=trace.id, started_us=trace.started_us, ended_us=now_us(), endpoint=trace.endpoint,
            requested_model=trace.requested_model, stream=trace.stream, status=status,
            cache_status=trace.cache_status, attempts=len(calls), tokens=total,
            usage_source="counted" if "counted" in sources else ("upstream" if sources else "none"),
            cost_usd=cost, counterfactual_usd=counterfactual, client_disconnected=trace.client_disconnected,
            first_token_us=served.first_token_us if served else None, key_id=trace.key_id, tenant=trace.tenant,
            tags=trace.tags,
            **_served_fields(trace, served),
            error_type=error.type if error else None, error_code=error.code if error else None,
            route_reason=trace.route_reason, client_request_id=trace.client_request_id)
        if trace.distill is not None:
            mark = trace.distill
            request.distill_task, request.distill_mode = mark.task, mark.mode
            request.distill_confidence, request.distill_agreed = mark.confidence, mark.agreed
        return LedgerEntry(request=request, calls=calls)

    def _call_row(self, trace: RequestTrace, call: CallTrace) -> CallRow:
        dep = call.deployment
        tokens, source = self._tokens(trace, call)
        # a call that produced nothing bills nothing, priced or not (a failed attempt on an unpriced deployment
        # must not make the whole request unpriced)
        cost = Decimal(0) if tokens == _NOTHING else \
            self._pricer.deployment_cost(dep, tokens, _at(call.started_us), batch=call.batch)
        error = call.error
        outcome = "error" if call.outcome == "open" else call.outcome
        return CallRow(
            id=call.id, request_id=trace.id, attempt=call.attempt, started_us=call.started_us,
            ended_us=call.ended_us or now_us(), deployment=dep.name, provider=dep.provider, model=dep.sent_model,
            tier=dep.tier, outcome=outcome, tokens=tokens, usage_source=source, cost_usd=cost,
            first_token_us=call.first_token_us, upstream_status=getattr(error, "upstream_status", None),
            error_type=error.type if error else None, error_code=error.code if error else None)

    def _cached_tokens(self, usage: dict[str, Any]) -> TokenUsage:
        try:
            return self._pricer.tokens("openai", usage)  # a cached answer carries OpenAI-shaped usage
        except UsageError:
            return TokenUsage()

    def _tokens(self, trace: RequestTrace, call: CallTrace) -> tuple[TokenUsage, str]:
        if call.usage is not None:
            try:
                return self._pricer.tokens(call.deployment.provider, call.usage), "upstream"
            except UsageError as exc:  # malformed usage: count what we saw rather than guess or fail the request
                log.warning("call %s: %s; counting tokens offline", call.id, exc.message)
        generated = call.first_token_us is not None
        if not generated and call.outcome in ("error", "open"):
            return TokenUsage(), "none"  # failed before producing anything: providers bill nothing
        if self._counter is None:
            return TokenUsage(), "none"
        model = call.deployment.sent_model
        prompt = self._counter.count_messages(trace.body.get("messages") or [], model, trace.body.get("tools"))
        output = self._counter.count_completion("".join(call.text), call.tool_calls or None, model)
        return TokenUsage(input_tokens=prompt, output_tokens=output), "counted"


def _served_fields(trace: RequestTrace, served: CallTrace | None) -> dict[str, Any]:
    if trace.cached is not None:
        return {"served_model": trace.cached.model, "deployment": trace.cached.deployment,
                "tier": trace.cached.tier, "provider": None}
    if served is None:
        return {"served_model": None, "deployment": None, "tier": None, "provider": None}
    dep = served.deployment
    return {"served_model": dep.sent_model, "deployment": dep.name, "tier": dep.tier, "provider": dep.provider}


def _at(epoch_us: int) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1_000_000, tz=UTC)
