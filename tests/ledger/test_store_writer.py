"""The ledger store, writer and spill file against real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokenomy.errors import ConfigError
from tokenomy.ledger.migrate import open_store, sqlite_path, upgrade
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow, from_pusd, to_pusd
from tokenomy.ledger.spill import SpillFile
from tokenomy.ledger.store import LedgerStoreError
from tokenomy.ledger.writer import LedgerWriter
from tokenomy.pricing.cost import TokenUsage


def entry(i: int, cost: str = "0.000123456789") -> LedgerEntry:
    tokens = TokenUsage(input_tokens=10 + i, cached_read_tokens=2, output_tokens=5)
    call = CallRow(id=f"call_{i}", request_id=f"req_{i}", attempt=1, started_us=1_000_000 + i, ended_us=2_000_000 + i,
                   deployment="d", provider="openai", model="gpt-4o", tier="frontier", outcome="ok", tokens=tokens,
                   usage_source="upstream", cost_usd=Decimal(cost))
    request = RequestRow(id=f"req_{i}", started_us=1_000_000 + i, ended_us=2_000_000 + i, endpoint="chat.completions",
                         requested_model="gpt-4o", stream=False, status=200, cache_status="none", attempts=1,
                         tokens=tokens, usage_source="upstream", cost_usd=Decimal(cost),
                         counterfactual_usd=Decimal("0.001"), served_model="gpt-4o", tier="frontier")
    return LedgerEntry(request=request, calls=[call])


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_money_round_trips_exactly() -> None:
    for text in ("0", "0.000000000001", "123.456789012345", "0.0375"):
        assert from_pusd(to_pusd(Decimal(text))) == Decimal(text)


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    url = str(tmp_path / "l.db")
    assert upgrade(url) == ["0001.initial", "0002.batch", "0003.keys", "0004.scale", "0005.jobs",
                            "0006.daily_rollup", "0007.distill", "0008.client_request_id",
                            "0009.unpriced", "0010.responses_state", "0011.semantic_verifications"]
    assert upgrade(url) == []


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="scheme 'mysql' is not supported"):
        sqlite_path("mysql://x/y")


def test_writes_are_idempotent_and_exact(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "l.db"))
    rows = [entry(i).as_json() for i in range(3)]
    store.write(rows)
    store.write(rows)  # a replayed batch adds nothing
    assert _count(tmp_path / "l.db", "requests") == 3 and _count(tmp_path / "l.db", "calls") == 3
    with sqlite3.connect(tmp_path / "l.db") as conn:
        total = conn.execute("SELECT SUM(cost_pusd), SUM(saving_pusd) FROM requests").fetchone()
    assert from_pusd(total[0]) == Decimal("0.000370370367")
    assert from_pusd(total[1]) == Decimal("0.003") - Decimal("0.000370370367")


async def test_writer_batches_and_flushes_on_stop(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "l.db"))
    writer = LedgerWriter(store, SpillFile(tmp_path / "spill.jsonl"), batch_size=50, flush_interval_s=0.01)
    await writer.start()
    for i in range(500):
        writer.submit(entry(i))
    await writer.stop()
    assert writer.written == 500 and writer.queued == 0
    assert _count(tmp_path / "l.db", "requests") == 500


class FlakyStore:
    """A real SQLite store that refuses writes while ``down`` (the store being unreachable)."""

    def __init__(self, path: Path) -> None:
        self.inner = open_store(str(path))
        self.down = True

    def write(self, rows: Any) -> None:
        if self.down:
            raise LedgerStoreError("store is down")
        self.inner.write(rows)


async def test_store_outage_spills_then_replays_exactly_once(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "l.db")
    spill = SpillFile(tmp_path / "spill.jsonl")
    writer = LedgerWriter(store, spill, batch_size=10, flush_interval_s=0.01, retry_s=0.05)
    await writer.start()
    for i in range(100):
        writer.submit(entry(i))
    await writer.flush()
    assert spill.pending() and _count(tmp_path / "l.db", "requests") == 0
    store.down = False
    await asyncio.sleep(0.1)
    for i in range(100, 120):
        writer.submit(entry(i))
    await writer.stop()
    assert not spill.pending()
    assert _count(tmp_path / "l.db", "requests") == 120 and _count(tmp_path / "l.db", "calls") == 120


async def test_spill_left_by_a_crash_is_replayed_at_start(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append([entry(i).as_json() for i in range(7)])
    with open(tmp_path / "spill.jsonl", "ab") as fh:
        fh.write(b'{"request": {"id": "torn')  # a crash mid-append
    spill.append([entry(7).as_json()])  # appended after the torn line: must survive it
    store = open_store(str(tmp_path / "l.db"))
    writer = LedgerWriter(store, spill)
    await writer.start()
    await writer.stop()
    assert _count(tmp_path / "l.db", "requests") == 8 and not spill.pending()


async def test_full_queue_spills_instead_of_dropping(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "l.db"))
    spill = SpillFile(tmp_path / "spill.jsonl")
    writer = LedgerWriter(store, spill, max_queue=5)
    for i in range(12):  # not started: nothing drains the queue
        writer.submit(entry(i))
    assert writer.queued == 5 and writer.spilled == 7
    await writer.start()  # replays the spill first
    await writer.stop()
    assert _count(tmp_path / "l.db", "requests") == 12
