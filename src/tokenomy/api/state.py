"""What a running gateway holds: built once in the app's lifespan, reached through ``request.app.state.gateway``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tokenomy.api.metrics import Metrics
from tokenomy.batch.service import BatchService
from tokenomy.cache.exact import ExactCache
from tokenomy.cache.semantic.layer import SemanticLayer
from tokenomy.config.settings import Settings
from tokenomy.control.admission import Admission
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.dispatch.embeddings import EmbeddingsDispatcher
from tokenomy.distill.bodies import BodyStore
from tokenomy.distill.serve import StudentSet
from tokenomy.errors import TokenomyError
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.ledger.writer import LedgerWriter
from tokenomy.routing.serve import RouterSet


@dataclass(slots=True)
class Gateway:
    settings: Settings
    dispatcher: Dispatcher
    accountant: Accountant
    ledger: LedgerWriter
    metrics: Metrics
    cache: ExactCache | None = None
    semantic: SemanticLayer | None = None
    routers: RouterSet | None = None  # learned routers (tokenomy/<name>), when configured
    batches: BatchService | None = None  # /v1/files and /v1/batches (batch.enabled)
    upstream_embeddings: EmbeddingsDispatcher | None = None  # kind: embeddings deployments
    students: StudentSet | None = None  # promoted distilled students (shadow / live), when any
    bodies: BodyStore | None = None  # stored request/response bodies for distillation (opt-in)
    embedder: Any = None  # AsyncEmbedder over MiniLM, loaded on first use (/v1/embeddings, the semantic cache)
    embedder_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    control: Admission | None = None  # keys, budgets, rate limits (docs/control.md)
    durable_ack: bool = False  # responses wait for their ledger row to be durable (ledger.ack)
    ledger_source: Any = None  # the ledger (a SQLite file or a PostgreSQL Database) that /admin, /ui, /v1/spend read

    async def load_embedder(self) -> Any:
        """The local embedding model, micro-batched across callers unless ``embeddings.batching`` is null."""
        async with self.embedder_lock:
            if self.embedder is None:
                from tokenomy.embeddings.batched import BatchedEmbedder, DirectEmbedder
                from tokenomy.embeddings.minilm import MiniLMEmbedder

                model = await asyncio.to_thread(MiniLMEmbedder.load)
                batching = self.settings.embeddings.batching
                self.embedder = DirectEmbedder(model) if batching is None else BatchedEmbedder(
                    model, max_batch=batching.max_batch, max_wait_ms=batching.max_wait_ms,
                    max_inflight=batching.max_inflight)
        return self.embedder

    def account(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """A finished request's ledger entry, counted in the metrics (and a routed request's real cost settled
        with its router); the caller stores it."""
        entry = self.accountant.entry(trace, status, error)
        self.metrics.observe(entry)
        cost = entry.request.cost_usd
        if trace.route_estimate is not None and self.routers is not None and status == 200 and cost is not None:
            model, estimate = trace.route_estimate  # a cache hit (no call) was that model's answer, at no cost
            if not trace.calls or trace.calls[-1].deployment.model == model:  # not a fallback's cost
                self.routers.settle(trace.requested_model, model, estimate, float(cost))  # budgets in real USD
        return entry

    async def acknowledge(self, entry: LedgerEntry) -> None:
        """With ``ledger.ack`` durable: wait until the entry survives this process (the writer's group commit)."""
        if self.durable_ack:
            await self.ledger.acknowledged(entry.request.id)

    def record(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """Account for a finished request: one ledger entry (queued, never dropped) and the metrics; a promoted
        student's answer is compared with the teacher's first, and the bodies are stored when that is turned on."""
        if self.students is not None and trace.distill is not None:
            self.students.observe(trace)
        entry = self.account(trace, status, error)
        self.ledger.submit(entry)
        if self.bodies is not None:
            self.bodies.record(trace, status)
        return entry
