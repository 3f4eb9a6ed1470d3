"""Budgets that hold under concurrency: reserve the worst case before the upstream call, settle to the exact ledger
cost after it, release the rest.

One rule decides, per scope (a key, its team), in one atomic step across every scope of the request
(``admit_rule``; the Redis store runs the same rule in one Lua script):

- refuse when the period's settled spend has reached the budget;
- admit when spend + reservations in flight + this request's worst case fit in the budget;
- admit as the *last* request when nothing else is in flight, even if its worst case would not fit: its real cost
  usually does, and at worst the budget is overshot by this one request (never more: nothing else may start while
  it runs);
- otherwise wait: requests in flight will settle and free room (``BudgetGuard`` waits up to ``budget_wait_s``).

A period's counters are named by the period's id (see ``periods``), so a reset happens once, by construction.
Money is integer pico-USD throughout, like the ledger. This module holds the rule, the store in the ledger's database
(one exclusive transaction per reservation: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, so it
also holds across replicas that share a PostgreSQL ledger without Redis) and the guard that waits;
``redis_budgets`` the Redis store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from tokenomy.control.periods import period_id
from tokenomy.db.engine import Database, SQLiteDatabase, Tx, reason
from tokenomy.errors import DatabaseError, InsufficientQuotaError
from tokenomy.ledger.records import from_pusd
from tokenomy.ledger.store import LedgerStoreError

Verdict = Literal["ok", "wait", "refuse"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget: ``key:<id>`` or ``team:<name>``, its amount and period."""

    name: str
    budget_pusd: int
    period: str

    def counter(self, at_us: int) -> tuple[str, str]:
        return self.name, period_id(self.period, at_us)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt to reserve: the verdict and, when not ``ok``, the scope that said so."""

    verdict: Verdict
    scope: str | None = None
    spent_pusd: int = 0
    budget_pusd: int = 0


@dataclass(slots=True)
class Reservation:
    id: str
    amount_pusd: int
    counters: list[tuple[str, str]] = field(default_factory=list)  # (scope, period id) reserved against
    settled: bool = False


def admit_rule(spent: int, reserved: int, budget: int, amount: int) -> Verdict:
    if spent >= budget:
        return "refuse"
    if spent + reserved + amount <= budget or reserved <= 0:
        return "ok"
    return "wait"


class BudgetStore(Protocol):
    async def try_reserve(self, rid: str, scopes: Sequence[Scope], amount_pusd: int, at_us: int,
                          ttl_s: float | None = None) -> Outcome:
        """``ttl_s``: how long an unsettled reservation may live before the store releases it (Redis; the SQL
        stores release reservations when the embedded gateway restarts)."""

    async def settle(self, reservation: Reservation, actual_pusd: int) -> None: ...

    async def prime(self, counters: Iterable[tuple[str, str, int]]) -> None:
        """Counters rebuilt from the ledger on start: (scope, period id, spent pico-USD)."""

    async def read(self, counters: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
        """(spent, reserved) of each counter."""

    async def aclose(self) -> None: ...


class SQLBudgetStore:
    """Counters in the ledger's database, each reservation one exclusive transaction. For one gateway (SQLite), or
    replicas sharing a PostgreSQL ledger; replicas with Redis share budgets there (``RedisBudgetStore``)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Durable enough on SQLite (synchronous=NORMAL): after a crash the counters are rebuilt from the ledger.

    def _transaction(self, work: str, fn: object, *args: object) -> object:
        try:
            with self.database.transaction(exclusive=True) as db:
                return fn(db, *args)  # type: ignore[operator]
        except DatabaseError as exc:
            raise LedgerStoreError(f"budget {work} failed at {self.database.describe()}: {reason(exc)}") from exc

    async def try_reserve(self, rid: str, scopes: Sequence[Scope], amount_pusd: int, at_us: int,
                          ttl_s: float | None = None) -> Outcome:
        result = await asyncio.to_thread(self._transaction, "reservation", _reserve, scopes, amount_pusd, at_us)
        assert isinstance(result, Outcome)
        return result

    async def settle(self, reservation: Reservation, actual_pusd: int) -> None:
        await asyncio.to_thread(self._transaction, "settlement", _settle, reservation, actual_pusd)

    async def prime(self, counters: Iterable[tuple[str, str, int]]) -> None:
        await asyncio.to_thread(self._transaction, "rebuild", _prime, list(counters))

    async def read(self, counters: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
        result = await asyncio.to_thread(self._transaction, "read", _read, counters)
        assert isinstance(result, list)
        return result

    async def aclose(self) -> None:
        self.database.close()


class SQLiteBudgetStore(SQLBudgetStore):
    """The embedded store: counters in the ledger's SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(SQLiteDatabase(path, timeout_s=10))


def _row(db: Tx, scope: str, period: str) -> tuple[int, int]:
    found = db.execute("SELECT spent_pusd, reserved_pusd FROM budget_counters WHERE scope = ? AND period = ?",
                       (scope, period)).fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


def _reserve(db: Tx, scopes: Sequence[Scope], amount: int, at_us: int) -> Outcome:
    waiting: Outcome | None = None
    for scope in scopes:
        spent, reserved = _row(db, *scope.counter(at_us))
        verdict = admit_rule(spent, reserved, scope.budget_pusd, amount)
        if verdict == "refuse":
            return Outcome("refuse", scope.name, spent, scope.budget_pusd)
        if verdict == "wait" and waiting is None:
            waiting = Outcome("wait", scope.name, spent, scope.budget_pusd)
    if waiting is not None:
        return waiting
    for scope in scopes:
        name, period = scope.counter(at_us)
        db.execute("INSERT INTO budget_counters AS c (scope, period, spent_pusd, reserved_pusd) VALUES (?, ?, 0, ?) "
                   "ON CONFLICT (scope, period) DO UPDATE SET reserved_pusd = c.reserved_pusd + excluded.reserved_pusd",
                   (name, period, amount))
    return Outcome("ok")


def _settle(db: Tx, reservation: Reservation, actual: int) -> None:
    for name, period in reservation.counters:
        greatest = "GREATEST" if db.dialect == "postgresql" else "MAX"
        db.execute("INSERT INTO budget_counters AS c (scope, period, spent_pusd, reserved_pusd) VALUES (?, ?, ?, 0) "
                   "ON CONFLICT (scope, period) DO UPDATE SET spent_pusd = c.spent_pusd + excluded.spent_pusd, "
                   f"reserved_pusd = {greatest}(0, c.reserved_pusd - ?)",
                   (name, period, actual, reservation.amount_pusd))


def _prime(db: Tx, counters: list[tuple[str, str, int]]) -> None:
    """Embedded mode owns its counters: on start they are the ledger's sums, with nothing in flight."""
    db.execute("UPDATE budget_counters SET reserved_pusd = 0")
    for name, period, spent in counters:
        db.execute("INSERT INTO budget_counters (scope, period, spent_pusd, reserved_pusd) VALUES (?, ?, ?, 0) "
                   "ON CONFLICT (scope, period) DO UPDATE SET spent_pusd = excluded.spent_pusd, reserved_pusd = 0",
                   (name, period, spent))


def _read(db: Tx, counters: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    return [_row(db, name, period) for name, period in counters]


class BudgetGuard:
    """Reserve (waiting while requests in flight may free room) and settle, over any ``BudgetStore``."""

    def __init__(self, store: BudgetStore, *, wait_s: float, poll_s: float = 0.05) -> None:
        self.store = store
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._changed = asyncio.Event()

    async def reserve(self, rid: str, scopes: Sequence[Scope], amount_pusd: int) -> Reservation:
        deadline = time.monotonic() + self._wait_s
        poll = self._poll_s
        while True:
            at_us = time.time_ns() // 1000
            outcome = await self.store.try_reserve(rid, scopes, amount_pusd, at_us)
            if outcome.verdict == "ok":
                return Reservation(rid, amount_pusd, [s.counter(at_us) for s in scopes])
            left = deadline - time.monotonic()
            if outcome.verdict == "refuse" or left <= 0:
                raise _refusal(outcome, amount_pusd)
            changed = self._changed
            try:  # woken by a settlement on this replica, or polling for other replicas'
                await asyncio.wait_for(changed.wait(), timeout=min(poll, left))
            except TimeoutError:
                poll = min(poll * 1.5, 0.5)

    async def reserve_prefix(self, rid: str, scopes: Sequence[Scope], amounts: Sequence[int],
                             ttl_s: float) -> tuple[int, Reservation | None]:
        """Reserve, without waiting, as many of ``amounts`` (in order: a provider batch's lines) as the budgets hold
        now, as one reservation; returns how many, and the reservation (None when none fit). The rule is
        ``admit_rule``'s, applied to the whole: the lines fit within the budget, except that the first line alone
        may overshoot it when nothing else is in flight (as one live request may)."""
        for _ in range(5):  # other replicas may reserve between the read and the reservation: read again
            at_us = time.time_ns() // 1000
            counters = [s.counter(at_us) for s in scopes]
            now = list(zip(scopes, await self.store.read(counters), strict=True))
            room = min(scope.budget_pusd - spent - reserved for scope, (spent, reserved) in now)
            idle = all(reserved <= 0 and spent < scope.budget_pusd for scope, (spent, reserved) in now)
            count, total = 0, 0
            for amount in amounts:
                if total + amount > room and not (count == 0 and idle):
                    break
                count, total = count + 1, total + amount
            if count == 0:
                return 0, None
            outcome = await self.store.try_reserve(rid, scopes, total, at_us, ttl_s)
            if outcome.verdict == "ok":
                return count, Reservation(rid, total, counters)
        return 0, None

    async def settle(self, reservation: Reservation, actual_pusd: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        await self.store.settle(reservation, max(0, actual_pusd))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _refusal(outcome: Outcome, amount_pusd: int) -> InsufficientQuotaError:
    kind, _, name = (outcome.scope or "key:?").partition(":")
    spent, budget = from_pusd(outcome.spent_pusd), from_pusd(outcome.budget_pusd)
    if outcome.verdict == "refuse":
        why = f"has spent ${_plain(spent)} of its ${_plain(budget)} budget for this period"
    else:
        why = (f"cannot cover this request's worst case (${_plain(from_pusd(amount_pusd))}) while other requests "
               f"are in flight (spent ${_plain(spent)} of ${_plain(budget)})")
    return InsufficientQuotaError(f"{kind} {name!r} {why}")


def _plain(value: object) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
