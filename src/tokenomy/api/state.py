"""What a running gateway holds: built once in the app's lifespan, reached through ``request.app.state.gateway``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tokenomy.api.metrics import Metrics
from tokenomy.cache.exact import ExactCache
from tokenomy.config.settings import Settings
from tokenomy.dispatch.dispatcher import Dispatcher
from tokenomy.errors import TokenomyError
from tokenomy.ledger.accounting import Accountant
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace
from tokenomy.ledger.writer import LedgerWriter


@dataclass(slots=True)
class Gateway:
    settings: Settings
    dispatcher: Dispatcher
    accountant: Accountant
    ledger: LedgerWriter
    metrics: Metrics
    cache: ExactCache | None = None
    embedder: Any = None  # MiniLMEmbedder, loaded on first /v1/embeddings call
    embedder_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def record(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        """Account for a finished request: one ledger entry (queued, never dropped) and the metrics."""
        entry = self.accountant.entry(trace, status, error)
        self.ledger.submit(entry)
        self.metrics.observe(entry)
        return entry
