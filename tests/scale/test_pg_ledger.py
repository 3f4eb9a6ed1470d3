"""The ledger on PostgreSQL: migrations, idempotent COPY-staged writes, the spend rollup, and the same spend report
as SQLite gives for the same entries (whole hours from the rollup, partial hours from the rows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.scale.parts import fresh_database

from tokenomy.db.engine import PostgresDatabase
from tokenomy.ledger.migrate import open_store, upgrade
from tokenomy.ledger.queries import GROUPS, Window, reading, spend_report
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow
from tokenomy.pricing.cost import TokenUsage

HOUR = 3_600_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def status_of(i: int) -> str:
    """Cache hits, verifications of the semantic cache (upstream calls, spend) and misses."""
    return "hit" if i % 7 == 0 else "semantic-verify" if i % 13 == 0 else "miss"


def entry(i: int) -> dict[str, Any]:
    """Entries spread over 30 hours with every dimension varying: keys, teams, tiers, errors, hits, no price."""
    at = T0 + i * 397_000_000  # about 6.6 minutes apart
    tokens = TokenUsage(input_tokens=10 + i % 13, cached_read_tokens=i % 3, cache_write_5m_tokens=i % 2,
                        output_tokens=5 + i % 7, reasoning_tokens=i % 2)
    cost = None if i % 17 == 0 else Decimal(i % 9) / Decimal(10**7) + Decimal("0.000000000001")
    status = 500 if i % 11 == 0 else 200
    calls = [CallRow(id=f"call_{i}_{a}", request_id=f"req_{i}", attempt=a, started_us=at + a, ended_us=at + 9,
                     deployment=f"dep{i % 3}", provider="openai", model=f"m{i % 4}", tier="medium",
                     outcome="error" if a == 1 and i % 5 == 0 else "ok", tokens=tokens, usage_source="upstream",
                     cost_usd=cost) for a in range(1, 2 + (i % 5 == 0))]
    request = RequestRow(id=f"req_{i}", started_us=at, ended_us=at + 10, endpoint="chat.completions",
                         requested_model=f"m{i % 4}", stream=bool(i % 2), status=status,
                         cache_status=status_of(i), attempts=len(calls), tokens=tokens,
                         usage_source="upstream", cost_usd=cost, counterfactual_usd=Decimal("0.00001"),
                         served_model=None if i % 19 == 0 else f"m{i % 4}", tier=None if i % 23 == 0 else "medium",
                         key_id=None if i % 6 == 0 else f"key_{i % 4}", tenant=None if i % 5 == 0 else f"t{i % 2}",
                         deployment=f"dep{i % 3}")
    return LedgerEntry(request, calls).as_json()


ROWS = [entry(i) for i in range(300)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PostgresDatabase, str]]:
    sqlite = tmp_path_factory.mktemp("ledger") / "ledger.db"
    with fresh_database() as url:
        assert upgrade(url) == ["0001.initial", "0002.batch", "0003.keys", "0004.scale", "0005.jobs",
                                "0006.daily_rollup", "0007.distill", "0008.client_request_id",
                                "0009.unpriced", "0010.responses_state", "0011.semantic_verifications"]
        assert upgrade(url) == []
        pg_store, sqlite_store = open_store(url), open_store(str(sqlite))
        for at in range(0, 300, 40):
            pg_store.write(ROWS[at:at + 40])
            sqlite_store.write(ROWS[at:at + 40])
        pg_store.write(ROWS[:120])  # a replayed spill: nothing twice, on rows or rollup
        database = PostgresDatabase(url)
        yield sqlite, database, url
        database.close()
        pg_store.close()  # type: ignore[attr-defined]


def test_writes_are_idempotent_and_the_rollup_is_exact(stores: tuple[Path, PostgresDatabase, str]) -> None:
    url = stores[2]
    with psycopg.connect(url) as conn:
        requests, calls = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                           for t in ("requests", "calls"))
        rolled = conn.execute("SELECT SUM(requests), SUM(cost_pusd) FROM spend_rollup").fetchone()
        raw = conn.execute("SELECT COUNT(*), SUM(COALESCE(cost_pusd, 0)) FROM requests").fetchone()
        rolled_calls = conn.execute("SELECT SUM(calls), SUM(input_tokens) FROM calls_rollup").fetchone()
        raw_calls = conn.execute("SELECT COUNT(*), SUM(input_tokens) FROM calls").fetchone()
    assert requests == 300 and calls == 300 + 60
    assert rolled == raw and rolled_calls == raw_calls


@pytest.mark.parametrize("by", [None, *sorted(GROUPS)])
@pytest.mark.parametrize("window", [(0, 40 * HOUR), (HOUR // 3, 7 * HOUR + 123),
                                    (2 * HOUR + 5, 2 * HOUR + 1800_000_000), (5 * HOUR, 9 * HOUR),
                                    (HOUR // 3, 30 * HOUR + 5), (-3 * HOUR, 24 * HOUR)])
def test_spend_on_postgres_equals_spend_on_sqlite(stores: tuple[Path, PostgresDatabase, str], by: str | None,
                                                  window: tuple[int, int]) -> None:
    sqlite, database, _ = stores
    span = Window(T0 + window[0], T0 + window[1])
    assert spend_report(database, span, by) == spend_report(sqlite, span, by)
    for owner in ({"key_id": "key_1"}, {"tenant": "t0"}):
        assert spend_report(database, span, by, **owner) == spend_report(sqlite, span, by, **owner)


def test_the_report_reads_whole_hours_from_the_rollup(stores: tuple[Path, PostgresDatabase, str]) -> None:
    """Rows deleted behind the rollup's back vanish only from partial hours: proof the whole hours come from it."""
    _, database, url = stores
    full = spend_report(database, Window(T0, T0 + 40 * HOUR))
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE requests DISABLE TRIGGER USER")
        conn.execute("CREATE TABLE kept AS SELECT * FROM requests")
        conn.execute("DELETE FROM requests")
    try:
        assert spend_report(database, Window(T0, T0 + 40 * HOUR)) == full
        with reading(database) as tx:
            assert tx.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
        assert spend_report(database, Window(T0 + 1, T0 + HOUR - 1))["requests"] == 0
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO requests SELECT * FROM kept")
            conn.execute("DROP TABLE kept")
            conn.execute("ALTER TABLE requests ENABLE TRIGGER USER")


def test_tokenomy_spend_reads_postgres(stores: tuple[Path, PostgresDatabase, str], tmp_path: Path) -> None:
    sqlite, _, url = stores
    env = {**os.environ, "TOKENOMY_HOME": str(tmp_path), "TOKENOMY_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--since", "2025-12-31", "--by", "model",
                          "--json"], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    report = json.loads(out)
    sqlite_report = spend_report(sqlite, Window(T0 - 24 * HOUR, T0 + 10**12), "model")
    assert report["requests"] == 300 and report["cost_usd"] == sqlite_report["cost_usd"]
    assert report["groups"] == sqlite_report["groups"]
    # the unpriced share: every 17th entry has no price; its tokens are input + cached + written + output
    unpriced = [i for i in range(300) if i % 17 == 0]
    tokens = sum(10 + i % 13 + i % 3 + i % 2 + 5 + i % 7 for i in unpriced)
    every = sum(10 + i % 13 + i % 3 + i % 2 + 5 + i % 7 for i in range(300))
    verifications = sum(status_of(i) == "semantic-verify" for i in range(300))
    assert report["cache"]["semantic_verifications"] == verifications > 0  # from the rollup, as from the rows
    assert sqlite_report["cache"]["semantic_verifications"] == verifications
    assert report["unpriced"] == {"requests": 18, "share_of_requests": round(18 / 300, 4), "tokens": tokens,
                                  "share_of_tokens": round(tokens / every, 4)}
    table = subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--since", "2025-12-31"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    share = report["unpriced"]["share_of_tokens"]  # the JSON's figure, checked against the hand count above
    assert table.splitlines()[0].endswith(f"UNPRICED: 6.0% of requests, {share:.1%} of tokens (no price: not in the "
                                          "cost)")
    bad = subprocess.run([sys.executable, "-m", "tokenomy", "spend"], capture_output=True, text=True, timeout=60,
                         env={**env, "TOKENOMY_DATABASE_URL": "postgresql://127.0.0.1:1/nowhere"})
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read the ledger at postgresql://")
    assert len(bad.stderr.strip().splitlines()) == 1
