"""Where a finished request's ledger entry goes. A live request's is queued to the ledger writer (and, with
``ledger.ack`` durable, its answer waits for it); a batch line's is kept for the runner to commit with the line's
result; a cascade step's only settles that step's reservation (the request's own entry holds every call)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from tokenomy.errors import TokenomyError
from tokenomy.ledger.records import LedgerEntry
from tokenomy.ledger.trace import RequestTrace

if TYPE_CHECKING:
    from tokenomy.gateway.core import Gateway


class Recorder(Protocol):
    durable: bool  # whether ``acknowledge`` waits for the entry to be durable

    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry: ...

    async def acknowledge(self, entry: LedgerEntry) -> None: ...


def refusals(record: Recorder, trace: RequestTrace) -> _Refusals:
    """A request refused inside the block (a model it may not use, an unknown model, a spent budget) still leaves
    its ledger row, with no call and no cost."""
    return _Refusals(record, trace)


class _Refusals:
    """``refusals``' block (a class rather than a ``contextmanager`` generator: it is entered twice per request)."""

    __slots__ = ("_record", "_trace")

    def __init__(self, record: Recorder, trace: RequestTrace) -> None:
        self._record, self._trace = record, trace

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, TokenomyError):
            self._record(self._trace, exc.status, exc)


class LiveRecorder:
    """A live request: the entry is queued to the ledger writer (never dropped)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.durable = gateway.durable_ack

    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        return self._gateway.record(trace, status, error)

    async def acknowledge(self, entry: LedgerEntry) -> None:
        await self._gateway.acknowledge(entry)


class KeptRecorder:
    """A batch line: the entry is kept (``entries``) for the runner to commit with the line's result, its call ids
    numbered after the line's request id, so every run of the line writes the same ids."""

    durable = False

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.entries: list[LedgerEntry] = []

    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        for call in trace.calls:
            call.id = f"{trace.id}-{call.attempt}"
        entry = self._gateway.finish(trace, status, error)
        self.entries.append(entry)
        return entry

    async def acknowledge(self, entry: LedgerEntry) -> None:
        return None


class StepRecorder:
    """One step of a cascade: its entry settles the step's own reservation and is not recorded."""

    durable = False

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def __call__(self, trace: RequestTrace, status: int, error: TokenomyError | None = None) -> LedgerEntry:
        return self._gateway.accountant.entry(trace, status, error)

    async def acknowledge(self, entry: LedgerEntry) -> None:
        return None
