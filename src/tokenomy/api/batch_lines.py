"""Batch lines run by tokenomy's own workers: each line is one request through the same path as a live one
(prompt shaping, learned routers and their next choices, exact and semantic caches, the deployment chain with retries
and fallbacks).

The line's ledger entry is not queued like a live request's: it goes back to the runner, which commits it with the
line's result in one transaction. Its request id is derived from the batch and line, and its calls are numbered
after it, so a line that runs again after a crash writes the same ids — once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from tokenomy.api.chat_completions import answer, answer_cascade, routed_chat
from tokenomy.api.embeddings import embed_body
from tokenomy.api.state import Gateway
from tokenomy.batch.executor import LineOutcome
from tokenomy.batch.objects import BatchRecord, LineUsage, line_request_id
from tokenomy.batch.store import PendingLine
from tokenomy.cache.shape import shape_body
from tokenomy.control.auth import ANONYMOUS
from tokenomy.errors import InsufficientQuotaError, TokenomyError, UpstreamError
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.wire.validation import validate_chat

ENDPOINT = "batch.chat.completions"


class GatewayLines:
    """The ``LineExecutor`` of a running gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def execute(self, batch: BatchRecord, line: PendingLine) -> LineOutcome:
        rid = line_request_id(batch.id, line.line_no)
        body = orjson.loads(line.body)
        if batch.endpoint == "/v1/embeddings":
            return await self._embed(rid, body)
        return await self._chat(rid, batch, body)

    async def _chat(self, rid: str, batch: BatchRecord, body: dict[str, Any]) -> LineOutcome:
        gateway = self._gateway
        keep = _Kept(gateway)
        try:
            # budgets, rate limits and model rules hold for a batch's lines as for the key's live requests
            principal = gateway.control.keys.principal_for(batch.key_id) if gateway.control else ANONYMOUS
            chat = validate_chat(body)
            principal.check_model(chat.typed.model)
            chat = replace(chat, body=shape_body(chat.body))
            trace = RequestTrace(id=rid, endpoint=ENDPOINT, requested_model=chat.typed.model, stream=False,
                                 body=chat.body, key_id=principal.key_id, tenant=principal.team_name,
                                 tags=principal.tags_json)
            routed = await gateway.routers.route(chat, {}, gateway.dispatcher.catalog.serves) \
                if gateway.routers is not None else None
            if routed is not None:
                chat = routed_chat(trace, routed)
            if routed is not None and routed.cascade is not None:
                done = await answer_cascade(gateway, routed, trace, {}, record=keep, principal=principal)
            else:
                done = await answer(gateway, chat, trace, {}, record=keep, principal=principal,
                                    then=routed.then if routed is not None else ())
        except TokenomyError as exc:
            return _failed(rid, exc, keep.entries)
        return LineOutcome(status_code=200, body=done.completion, request_id=rid,
                           usage=LineUsage.from_openai(done.completion.get("usage")), ledger=done.entry.as_json())

    async def _embed(self, rid: str, body: dict[str, Any]) -> LineOutcome:
        keep = _Kept(self._gateway)
        try:
            result = await embed_body(self._gateway, body, rid, keep)
        except TokenomyError as exc:
            return _failed(rid, exc, keep.entries)
        return LineOutcome(status_code=200, body=result, request_id=rid,
                           usage=LineUsage.from_openai(result.get("usage")),
                           ledger=keep.entries[-1].as_json() if keep.entries else None)


class _Kept:
    """A recorder that keeps a line's ledger entry for the runner to commit (not queued like a live request's),
    with call ids numbered after the line's request id: the same ids on every run of the line."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.entries: list[LedgerEntry] = []

    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        for call in trace.calls:
            call.id = f"{trace.id}-{call.attempt}"
        entry = self._gateway.account(trace, status, error)
        self.entries.append(entry)
        return entry


def _failed(rid: str, exc: TokenomyError, entries: list[LedgerEntry]) -> LineOutcome:
    # a rate limit (the upstream's or the key's) is waited out; a spent budget fails the line
    rate_limited = exc.status == 429 and not isinstance(exc, InsufficientQuotaError)
    transient = isinstance(exc, UpstreamError) and exc.retryable and not rate_limited
    return LineOutcome(status_code=exc.status, body=exc.to_body(), request_id=rid,
                       ledger=entries[-1].as_json() if entries else None, rate_limited=rate_limited,
                       retry_after_s=getattr(exc, "retry_after_s", None), transient=transient)

