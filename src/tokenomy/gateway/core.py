"""The gateway core: built once when a server starts (``gateway.build``), never changed after, and knowing no HTTP.

Every door (``/v1/chat/completions``, ``/v1/messages``, ``/v1/responses``, ``/v1/embeddings``, a batch line run by
our workers, a batch handed to a provider) calls one entry point here, and each entry point runs the one ordered path:

    authenticate → resolve (the model, a router's choice, a student; the caller's model rules) → caches
    → admit (RPM/TPM, the budget reservation) → dispatch with fallback → settle → ledger → metrics

(The caller's model rules are checked before the caches, so a key never reads an answer of a model it may not use;
the budget and rate limits after them, so a cache hit, which costs nothing, spends no limit.)

A door parses its request and renders the plain result it gets back (``gateway.results``). A switched-off feature
is a do-nothing part (``gateway.parts``), so the path never asks whether a feature is on. Ledger ids belong to the
server: a request id is made here (a batch line's is derived from its batch and line, so a rerun writes the same
rows once); a client's own request id is recorded beside it, never used as a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.batch.service import BatchService
from tokenomy.config.settings import Settings
from tokenomy.control.admission import Admission
from tokenomy.control.auth import Principal
from tokenomy.control.estimate import input_tokens
from tokenomy.conversations.store import ResponseStore
from tokenomy.db.engine import Database
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.dispatch.embeddings import EmbeddingsDispatcher
from tokenomy.embeddings.batched import LazyEmbedder
from tokenomy.errors import NotFoundError, TokenomyError
from tokenomy.gateway.chat import serve_chat
from tokenomy.gateway.embeddings import serve_embeddings
from tokenomy.gateway.parts import BodyStorage, ResponseCache, Routers, SemanticCache, Students
from tokenomy.gateway.recorders import LiveRecorder
from tokenomy.gateway.requests import Caller
from tokenomy.gateway.responses import delete, owner_of, serve_responses, stored
from tokenomy.gateway.results import Answer, EmbeddingsAnswer, ResponsesAnswer, ResponsesStream, StreamAnswer
from tokenomy.ids import random_hex
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.metrics import Metrics
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.ledger.writer import LedgerWriter


def new_request_id() -> str:
    """A ledger request id: the server's own, unique (a client's id is recorded beside it)."""
    return "req_" + random_hex(12)


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: Settings
    dispatcher: Dispatcher
    accountant: Accountant
    ledger: LedgerWriter
    metrics: Metrics
    control: Admission  # keys, budgets, rate limits (an open gateway has no keys: everyone is anonymous)
    cache: ResponseCache
    semantic: SemanticCache
    routers: Routers
    students: Students
    bodies: BodyStorage
    embedder: LazyEmbedder  # the local embedding model, loaded on first use
    upstream_embeddings: EmbeddingsDispatcher  # ``kind: embeddings`` deployments (none: serves no model)
    ledger_source: Path | Database  # what /admin, /ui and /v1/spend read
    conversations: ResponseStore  # the Responses API's stored responses (in the ledger's database)
    durable_ack: bool = False  # responses wait for their ledger row to be durable (ledger.ack)
    batch_service: BatchService | None = None  # /v1/files and /v1/batches (batch.enabled)

    # --- the doors' entry points ----------------------------------------------------------------------------------

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Who is asking (the master key, a virtual key, or anonymous on an open gateway); raises 401."""
        return await self.control.authenticate(headers)

    async def chat(self, body: dict[str, Any], caller: Caller) -> Answer | StreamAnswer:
        """A chat completion request (the parsed JSON body), whole or streamed as the body asks."""
        rid = new_request_id()
        try:
            return await serve_chat(self, body, caller, rid, LiveRecorder(self))
        except TokenomyError as exc:
            exc.request_id = rid  # the door's error response names the ledger row
            raise

    async def embeddings(self, body: dict[str, Any], caller: Caller) -> EmbeddingsAnswer:
        rid = new_request_id()
        try:
            return await serve_embeddings(self, body, caller, rid, LiveRecorder(self))
        except TokenomyError as exc:
            exc.request_id = rid
            raise

    async def responses(self, body: dict[str, Any], caller: Caller) -> ResponsesAnswer | ResponsesStream:
        """An OpenAI Responses request (the parsed JSON body), translated onto ``chat``; the conversation state is
        the caller's own (``previous_response_id``, ``store``)."""
        return await serve_responses(self, body, caller)

    async def stored_response(self, response_id: str, caller: Caller) -> dict[str, Any]:
        """A stored response object; NotFoundError (404) when the caller stored none by that id."""
        return (await stored(self, response_id, owner_of(caller.principal))).response

    async def stored_input_items(self, response_id: str, caller: Caller) -> list[dict[str, Any]]:
        """A stored response's own input items, in order; NotFoundError (404) as for ``stored_response``."""
        return (await stored(self, response_id, owner_of(caller.principal))).input_items

    async def delete_response(self, response_id: str, caller: Caller) -> None:
        await delete(self, response_id, owner_of(caller.principal))

    async def count_tokens(self, body: dict[str, Any], caller: Caller) -> int:
        """The prompt tokens of a chat body, counted offline as budget reservations count them (an estimate for
        models with another tokenizer); no upstream call, no ledger row. The model must be served here and be one
        the caller may use."""
        model = str(body.get("model") or "")
        if not self.dispatcher.catalog.serves(model) and self.routers.models_of(model) is None:
            self.dispatcher.catalog.chain(model)  # raises ModelNotFoundError, naming the models served
        caller.principal.check_model(model)
        return input_tokens(body, model, self.accountant.counter)

    @property
    def batches(self) -> BatchService:
        """The batch service; NotFoundError (404) when batches are switched off."""
        if self.batch_service is None:
            raise NotFoundError("batches are turned off on this gateway (batch.enabled: false)")
        return self.batch_service

    # --- accounting -----------------------------------------------------------------------------------------------

    def account(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """A finished request's ledger entry, counted in the metrics (and a routed request's real cost settled
        with its router); the caller stores it."""
        entry = self.accountant.entry(trace, status, error)
        self.metrics.observe(entry)
        cost = entry.request.cost_usd
        if trace.route_estimate is not None and status == 200 and cost is not None:
            model, estimate = trace.route_estimate  # a cache hit (no call) was that model's answer, at no cost
            if not trace.calls or trace.calls[-1].deployment.model == model:  # not a fallback's cost
                self.routers.settle(trace.requested_model, model, estimate, float(cost))  # budgets in real USD
        return entry

    def finish(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """Account for a finished request: a promoted student's answer is compared with the teacher's first, then
        the ledger entry is made and counted, and the bodies are stored when that is on. The caller keeps the
        entry (``record`` queues it)."""
        self.students.observe(trace)
        entry = self.account(trace, status, error)
        self.bodies.record(trace, status)
        return entry

    def record(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """A finished live request: its entry (``finish``) queued to the ledger writer, never dropped."""
        entry = self.finish(trace, status, error)
        self.ledger.submit(entry)
        return entry

    async def acknowledge(self, entry: LedgerEntry) -> None:
        """With ``ledger.ack`` durable: wait until the entry survives this process (the writer's group commit)."""
        if self.durable_ack:
            await self.ledger.acknowledged(entry.request.id)
