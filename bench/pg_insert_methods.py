"""Which PostgreSQL driver and batched-insert method the ledger uses: ledger rows/s for each, one run, one box.

Each method writes the same batches (1,000 ledger entries = 1,000 request rows + 1,000 call rows, fresh ids, the
spend-rollup triggers on) into a fresh database, idempotently (a replayed batch must add nothing, which COPY alone
cannot do: it goes to a temporary table first, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``).

    PYTHONPATH=src .venv/bin/python bench/pg_insert_methods.py [--url postgresql://127.0.0.1:5432/test] [--batches 20]

(asyncpg is measured but not a dependency: ``pip install asyncpg`` first.)

Prints one JSON object: rows/s per method and the ratio to psycopg's ``executemany`` (the baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.ledger.migrate import upgrade
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow
from tokenomy.pricing.cost import TokenUsage


def entries(tag: str, n: int, start_us: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        tokens = TokenUsage(input_tokens=100 + i % 50, cached_read_tokens=i % 7, output_tokens=30 + i % 20)
        rid = f"req_{tag}_{i}"
        at = start_us + i * 1000
        call = CallRow(id=f"call_{tag}_{i}", request_id=rid, attempt=1, started_us=at, ended_us=at + 500,
                       deployment=f"dep{i % 4}", provider="openai", model=f"model-{i % 4}", tier="medium",
                       outcome="ok", tokens=tokens, usage_source="upstream", cost_usd=Decimal("0.0000123"))
        request = RequestRow(id=rid, started_us=at, ended_us=at + 600, endpoint="chat.completions",
                             requested_model=f"model-{i % 4}", stream=False, status=200, cache_status="miss",
                             attempts=1, tokens=tokens, usage_source="upstream", cost_usd=Decimal("0.0000123"),
                             counterfactual_usd=Decimal("0.0001"), served_model=f"model-{i % 4}", tier="medium",
                             key_id=f"key_{i % 10}", deployment=f"dep{i % 4}")
        out.append(LedgerEntry(request, [call]).as_json())
    return out


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [r["request"] for r in rows], [c for r in rows for c in r["calls"]]


def psycopg_executemany(conn: Any, rows: list[dict[str, Any]]) -> None:
    requests, calls = split(rows)
    with conn.transaction(), conn.cursor() as cur:
        for table, items in (("requests", requests), ("calls", calls)):
            cols = list(items[0])
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(f'%({c})s' for c in cols)})"
                            " ON CONFLICT (id) DO NOTHING", items)


def psycopg_multirow(conn: Any, rows: list[dict[str, Any]]) -> None:
    requests, calls = split(rows)
    with conn.transaction(), conn.cursor() as cur:
        for table, items in (("requests", requests), ("calls", calls)):
            cols = list(items[0])
            marks = "(" + ", ".join(["%s"] * len(cols)) + ")"
            for at in range(0, len(items), 500):  # 500 rows x ~30 columns stays under the 65,535 parameter limit
                chunk = items[at:at + 500]
                values = [r[c] for r in chunk for c in cols]
                cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([marks] * len(chunk))} "
                            "ON CONFLICT (id) DO NOTHING", values)


def psycopg_copy(conn: Any, rows: list[dict[str, Any]]) -> None:
    requests, calls = split(rows)
    with conn.transaction(), conn.cursor() as cur:
        for table, items in (("requests", requests), ("calls", calls)):
            cols = list(items[0])
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY stage_{table} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in items:
                    copy.write_row([r[c] for c in cols])
            cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM stage_{table} "
                        "ON CONFLICT (id) DO NOTHING")


async def asyncpg_executemany(conn: Any, rows: list[dict[str, Any]]) -> None:
    requests, calls = split(rows)
    async with conn.transaction():
        for table, items in (("requests", requests), ("calls", calls)):
            cols = list(items[0])
            await conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                                   f"({', '.join(f'${i + 1}' for i in range(len(cols)))}) ON CONFLICT (id) DO NOTHING",
                                   [tuple(r[c] for c in cols) for r in items])


async def asyncpg_copy(conn: Any, rows: list[dict[str, Any]]) -> None:
    requests, calls = split(rows)
    async with conn.transaction():
        for table, items in (("requests", requests), ("calls", calls)):
            cols = list(items[0])
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}) ON COMMIT DELETE ROWS")
            await conn.copy_records_to_table(f"stage_{table}", records=[tuple(r[c] for c in cols) for r in items],
                                             columns=cols)
            await conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM "
                               f"stage_{table} ON CONFLICT (id) DO NOTHING")


def run_sync(url: str, method: Callable[[Any, list[dict[str, Any]]], None], batches: int, size: int) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        work = [entries(uuid.uuid4().hex[:8], size, 1_700_000_000_000_000 + b * 10**9) for b in range(batches + 1)]
        method(conn, work[0])  # warm-up (temp tables, prepared statements)
        method(conn, work[0])  # the replay: must add nothing
        began = time.perf_counter()
        for batch in work[1:]:
            method(conn, batch)
        return 2 * size * batches / (time.perf_counter() - began)


async def run_async(url: str, method: Any, batches: int, size: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        work = [entries(uuid.uuid4().hex[:8], size, 1_700_000_000_000_000 + b * 10**9) for b in range(batches + 1)]
        await method(conn, work[0])
        await method(conn, work[0])
        began = time.perf_counter()
        for batch in work[1:]:
            await method(conn, batch)
        return 2 * size * batches / (time.perf_counter() - began)
    finally:
        await conn.close()


def counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return (conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0],  # type: ignore[index]
                conn.execute("SELECT COALESCE(SUM(requests), 0) FROM spend_rollup").fetchone()[0])  # type: ignore[index]


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    name = f"tokenomy_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    url = args.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        results: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # interleaved rounds: a noisy neighbour hits every method alike
            for label, sync in (("psycopg executemany", psycopg_executemany), ("psycopg multi-row", psycopg_multirow),
                                ("psycopg COPY + INSERT SELECT", psycopg_copy)):
                results.setdefault(label, []).append(run_sync(url, sync, args.batches, args.size))
            for label, method in (("asyncpg executemany", asyncpg_executemany),
                                  ("asyncpg COPY + INSERT SELECT", asyncpg_copy)):
                results.setdefault(label, []).append(asyncio.run(run_async(url, method, args.batches, args.size)))
        stored, rolled = counts(url)
        expected = args.rounds * 5 * (args.batches + 1) * args.size
        best = {k: max(v) for k, v in results.items()}
        base = best["psycopg executemany"]
        print(json.dumps({"rows_per_batch": 2 * args.size, "batches": args.batches, "rounds": args.rounds,
                          "rows_per_s": {k: round(v) for k, v in best.items()},
                          "ratio_to_psycopg_executemany": {k: round(v / base, 2) for k, v in best.items()},
                          "request_rows_stored": stored, "expected": expected,
                          "rollup_requests": int(rolled)}, indent=1))
        assert stored == expected == rolled, "a replayed batch added rows, or the rollup disagrees"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
