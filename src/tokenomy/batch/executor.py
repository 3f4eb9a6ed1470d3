"""The seams a batch runs through: one line at a time (``LineExecutor``, tokenomy's own workers) or a whole batch
at a provider (``RemoteBatches``, pass-through). The gateway provides both; the runner knows neither's insides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenomy.batch.objects import BatchRecord, LineUsage
from tokenomy.batch.store import PendingLine


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """What running one line gave. ``rate_limited``: the upstream said slow down (429); the line is not finished
    and runs again after ``retry_after_s`` (or the batch's own back-off). ``transient``: a failure that may pass
    (5xx, timeout); the runner may try again before recording it."""

    status_code: int
    body: dict[str, Any]
    request_id: str
    usage: LineUsage = field(default_factory=LineUsage)
    ledger: dict[str, Any] | None = None  # LedgerEntry.as_json(): written with the line's result
    rate_limited: bool = False
    retry_after_s: float | None = None
    transient: bool = False


class LineExecutor(Protocol):
    async def execute(self, batch: BatchRecord, line: PendingLine) -> LineOutcome:
        """Run one line (its body is the endpoint's request) and say what happened; never raises for the line's
        own failure (that is an outcome), only for the gateway's."""


class RemoteBatches(Protocol):
    async def advance(self, batch: BatchRecord) -> None:
        """Move a pass-through batch on: submit it to the provider, poll it, and when the provider is done write
        its results as this batch's lines and files. Returns when the batch's status changed or it is time to poll
        again."""
