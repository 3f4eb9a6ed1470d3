"""Batch lines run by tokenomy's own workers: each line is one request through the same path as a live one, under
the key that submitted the batch (its model rules, budget and rate limits), with students, routers, caches, the
deployment chain and its fallbacks. A line is answered whole (a ``stream`` field in the line is ignored).

The line's ledger entry is not queued like a live request's: it goes back to the runner, which commits it with the
line's result in one transaction. Its request id is derived from the batch and line, and its calls are numbered
after it, so a line that runs again after a crash writes the same ids — once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tokenomy.batch.executor import LineOutcome
from tokenomy.batch.objects import BatchRecord, LineUsage, line_request_id
from tokenomy.batch.store import PendingLine
from tokenomy.errors import InsufficientQuotaError, TokenomyError, UpstreamError
from tokenomy.gateway.chat import serve_chat
from tokenomy.gateway.embeddings import serve_embeddings
from tokenomy.gateway.recorders import KeptRecorder
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.results import Answer
from tokenomy.ledger.records import LedgerEntry

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway

ENDPOINT = "batch.chat.completions"


class GatewayLines:
    """The ``LineExecutor`` of a running gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def execute(self, batch: BatchRecord, line: PendingLine) -> LineOutcome:
        rid = line_request_id(batch.id, line.line_no)
        body = orjson.loads(line.body)
        keep = KeptRecorder(self._gateway)
        try:
            caller = Caller(principal=await self._gateway.control.keys.principal_for(batch.key_id),
                            endpoint="batch.embeddings" if batch.endpoint == "/v1/embeddings" else ENDPOINT)
            if batch.endpoint == "/v1/embeddings":
                result = (await serve_embeddings(self._gateway, body, caller, rid, keep)).body
            else:
                answer = await serve_chat(self._gateway, _whole(body), caller, rid, keep)
                assert isinstance(answer, Answer)
                result = answer.completion
        except TokenomyError as exc:
            return _failed(rid, exc, keep.entries)
        return LineOutcome(status_code=200, body=result, request_id=rid,
                           usage=LineUsage.from_openai(result.get("usage")),
                           ledger=keep.entries[-1].as_json() if keep.entries else None)


def _whole(body: dict[str, Any]) -> dict[str, Any]:
    """The line's body asked whole: batch output holds completions, not streams."""
    if not body.get("stream") and "stream_options" not in body:
        return body
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


def _failed(rid: str, exc: TokenomyError, entries: list[LedgerEntry]) -> LineOutcome:
    # a rate limit (the upstream's or the key's) is waited out; a spent budget fails the line
    rate_limited = exc.status == 429 and not isinstance(exc, InsufficientQuotaError)
    transient = isinstance(exc, UpstreamError) and exc.retryable and not rate_limited
    return LineOutcome(status_code=exc.status, body=exc.to_body(), request_id=rid,
                       ledger=entries[-1].as_json() if entries else None, rate_limited=rate_limited,
                       retry_after_s=getattr(exc, "retry_after_s", None), transient=transient)
