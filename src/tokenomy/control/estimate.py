"""A request's worst-case cost, reserved against budgets before the upstream call: its counted prompt tokens plus
its output limit (``max_completion_tokens``/``max_tokens``, else the deployment's ``max_output_tokens``, else
``control.default_max_output_tokens``), times ``n``, at the dearest price in its chain of deployments (a fallback may
serve it). A deployment without a known price counts as free here, as it does in the ledger (which marks it
unpriced)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokenomy.config.settings import DeploymentConfig
from tokenomy.ledger.accounting import Pricer, TokenCounter
from tokenomy.ledger.records import to_pusd
from tokenomy.pricing.cost import TokenUsage

MAX_RESERVATION_PUSD = 2**62  # an absurd max_tokens still fits the stores' 64-bit integers (and is refused)


@dataclass(frozen=True, slots=True)
class Estimate:
    input_tokens: int
    max_output_tokens: int  # what the request may generate (all choices)
    asked_output_tokens: int  # the part of it the client capped explicitly (charged to TPM at admission)
    worst_case_pusd: int


def explicit_max_output(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def input_tokens(body: dict[str, Any], model: str, counter: TokenCounter | None) -> int:
    if counter is None:
        return 0
    messages = body.get("messages")
    tools = body.get("tools")
    return counter.count_messages(messages if isinstance(messages, list) else [], model,
                                  tools if isinstance(tools, list) else None)


def estimate(body: dict[str, Any], chain: Sequence[DeploymentConfig], pricer: Pricer, counter: TokenCounter | None,
             default_max_output: int, *, batch: bool = False) -> Estimate:
    """``batch``: priced at the provider's batch rates (a batch handed to its batch API)."""
    asked_n = body.get("n")
    n = asked_n if isinstance(asked_n, int) and asked_n > 0 else 1
    prompt = input_tokens(body, chain[0].sent_model if chain else "", counter)
    asked = explicit_max_output(body)
    worst = 0
    most_output = 0
    at = datetime.now(tz=UTC)
    for dep in chain:
        output = (asked or dep.max_output_tokens or default_max_output) * n
        most_output = max(most_output, output)
        cost = pricer.deployment_cost(dep, TokenUsage(input_tokens=prompt, output_tokens=output), at, batch=batch)
        worst = max(worst, to_pusd(cost) or 0)
    return Estimate(input_tokens=prompt, max_output_tokens=most_output, asked_output_tokens=(asked or 0) * n,
                    worst_case_pusd=min(worst, MAX_RESERVATION_PUSD))


def embeddings_estimate(body: Mapping[str, Any], chain: Sequence[DeploymentConfig], pricer: Pricer,
                        counter: TokenCounter | None) -> Estimate:
    """An embeddings request's cost: its input texts' counted tokens, at the dearest price in ``chain``."""
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
    model = chain[0].sent_model if chain else ""
    tokens = sum(counter.count_text(t, model) for t in texts if isinstance(t, str)) if counter is not None else 0
    tokens += sum(len(t) for t in texts if isinstance(t, list))  # token-id input: one token per id
    at = datetime.now(tz=UTC)
    worst = max((to_pusd(pricer.deployment_cost(dep, TokenUsage(input_tokens=tokens), at)) or 0 for dep in chain),
                default=0)
    return Estimate(input_tokens=tokens, max_output_tokens=0, asked_output_tokens=0,
                    worst_case_pusd=min(worst, MAX_RESERVATION_PUSD))
