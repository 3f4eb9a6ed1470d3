"""What the gateway core hands back to a door: plain data, no HTTP. A door renders it (JSON, SSE, another API's
shapes); the ``headers`` are the response's metadata (``x-request-id``, ``x-tokenomy-*``), which every door passes
on as response headers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.providers.registry import Deployment

Chunks = AsyncGenerator[dict[str, Any], None]
CLIENT_GONE = 499  # the status of a request whose client left before its answer (nginx's "client closed request")


@dataclass(slots=True)
class Answer:
    """A whole (non-streamed) answer: the completion, its ledger entry and the response metadata."""

    completion: dict[str, Any]
    entry: LedgerEntry
    headers: dict[str, str]


@dataclass(slots=True)
class StreamAnswer:
    """A streamed answer: its chunks in OpenAI's ``chat.completion.chunk`` shape, and the response metadata.

    Iterating ``chunks`` to its end means the stream ended well (and is accounted). A stream that breaks after its
    first chunk raises ``StreamBrokenError`` once it is accounted; a door renders that as its API's error event. A
    door that stops early (the client left) must ``aclose()`` the chunks: the rest is then drained for its usage or
    stopped, and accounted as abandoned.
    """

    chunks: Chunks
    headers: dict[str, str]


@dataclass(slots=True)
class EmbeddingsAnswer:
    """An embeddings response body and the response metadata."""

    body: dict[str, Any]
    headers: dict[str, str]


def served_headers(rid: str, model: str, tier: str, deployment: str, cache: str) -> dict[str, str]:
    return {"x-request-id": rid, "x-tokenomy-model": model, "x-tokenomy-tier": tier,
            "x-tokenomy-deployment": deployment, "x-tokenomy-cache": cache}


def deployment_headers(rid: str, dep: Deployment, cache: str) -> dict[str, str]:
    return served_headers(rid, dep.config.sent_model, dep.config.tier, dep.name, cache)


def cost_headers(entry: LedgerEntry) -> dict[str, str]:
    return {"x-tokenomy-cost-usd": _money(entry.request.cost_usd),
            "x-tokenomy-saving-usd": _money(entry.request.saving_usd)}


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else format(value.normalize(), "f")


def fell_back(trace: RequestTrace, asked: str, then: Sequence[str], model: str) -> dict[str, str]:
    """When a router's next choice answered (``model``, not the ``asked`` one): the route reason says so, in the
    ledger and the headers, and ``x-tokenomy-route`` names it. No headers otherwise."""
    if model == asked:
        return {}
    failed = ", ".join((asked, *then[:then.index(model)]))
    trace.route_reason = f"{trace.route_reason}; {failed} failed, served by {model} (router's next choice)"
    return {"x-tokenomy-route": model, "x-tokenomy-route-reason": trace.route_reason}


def client_id_headers(trace: RequestTrace) -> dict[str, str]:
    """The client's own request id, echoed back (the ledger records it beside the server's)."""
    return {"x-client-request-id": trace.client_request_id} if trace.client_request_id else {}


async def replay(chunks: list[dict[str, Any]]) -> Chunks:
    for chunk in chunks:
        yield chunk


@dataclass(slots=True)
class ResponsesAnswer:
    """A Responses API ``response`` object (the Responses door's whole answer, or a stored one) and metadata."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(slots=True)
class ResponsesStream:
    """A streamed Responses API answer: its semantic events in order (``response.created`` … ``response.completed``,
    or ``response.failed``), and the response metadata. Closing ``events`` early closes the chat stream under it."""

    events: AsyncGenerator[dict[str, Any], None]
    headers: dict[str, str]
