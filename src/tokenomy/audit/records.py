"""One logged request as the audit sees it, whatever file it came from, and the bad-line tally of a read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tokenomy.pricing.cost import TokenUsage


@dataclass(frozen=True, slots=True)
class LogRecord:
    model: str
    timestamp: float | None  # epoch seconds, UTC
    body: Mapping[str, Any] | None  # the chat request, when the log has it
    usage: TokenUsage | None  # as reported; None when the log has no usage (counted offline later)
    output_text: str | None = None  # the reply, for offline counting when usage is missing
    cost_usd: Decimal | None = None  # as logged (tokenomy's ledger); priced from the catalogue when None
    stream: bool = False
    batch: bool = False  # already sent through a batch API (priced at batch rates)
    latency_tolerant: bool = False  # metadata says it may wait (batch candidate)
    metadata: Mapping[str, Any] | None = None  # the log line's (or request's) metadata: tags, route


@dataclass(slots=True)
class BadLines:
    """Skipped lines of one read: how many, and the first few (file, line number, reason)."""

    count: int = 0
    first: list[tuple[str, int, str]] = field(default_factory=list)
    keep: int = 5

    def add(self, source: str, line: int, reason: str) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append((source, line, reason))
