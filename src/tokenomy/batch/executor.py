"""The seams a batch runs through: one line at a time (``LineExecutor``, tokenomy's own workers) or a whole batch
at a provider (``RemoteBatches``, pass-through). The gateway provides both; the runner knows neither's insides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tokenomy.batch.objects import BatchRecord, LineUsage
from tokenomy.batch.store import PendingLine
from tokenomy.config.settings import DeploymentConfig


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


class RemoteStep(StrEnum):
    """What a pass-through batch needs next from the runner."""

    SUBMITTED = "submitted"  # just sent to the provider: poll it
    WAIT = "wait"  # still running there: poll again after batch.poll_interval_s
    COMPLETED = "completed"  # results recorded: finish (lines the provider did not return are closed as expired)
    EXPIRED = "expired"  # the provider's window ended: finish as expired
    CANCELLED = "cancelled"  # cancelled there (or never sent): finish as cancelled
    FAILED = "failed"  # the batch failed (the step already said why)


@dataclass(frozen=True, slots=True)
class AdmittedLines:
    """A provider batch at submission: the lines to send, the lines refused (each with its outcome: the error and
    its ledger entry), and the budget reservation to keep in the batch's state until its results settle it."""

    send: list[PendingLine]
    refused: list[tuple[PendingLine, LineOutcome]]
    held: dict[str, Any] | None = None


class LineAdmission(Protocol):
    """The gateway's rules for a provider batch's lines: the key that submitted it (still valid), its models, its
    rate limits and its budget, as for any request."""

    async def admit(self, batch: BatchRecord, lines: Sequence[PendingLine],
                    deployment: DeploymentConfig) -> AdmittedLines: ...

    async def settle(self, batch: BatchRecord, held: Mapping[str, Any], cost_pusd: int) -> None: ...


class RemoteBatches(Protocol):
    async def advance(self, batch: BatchRecord) -> RemoteStep:
        """Move a pass-through batch on one step: submit it to the provider, or poll it, and when the provider is
        done record its results as this batch's lines."""
