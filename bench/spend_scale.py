"""``tokenomy spend`` over a 10M-request ledger on PostgreSQL: the rollup (whole hours) + partial-hour rows against
the baseline of summing the rows themselves, in the same run.

    PYTHONPATH=src .venv/bin/python bench/spend_scale.py [--url postgresql://127.0.0.1:5432/test] [--rows 10000000]

The ledger is generated once inside PostgreSQL (``INSERT … SELECT`` over ``generate_series``, through the rollup
triggers, 500k rows a statement; one call row per request), spread over the 90 days before the run, 8 models, 50
keys, 10 teams, 3 tiers, 6 deployments; it is kept (database ``tokenomy_spend_bench``) and reused when it already
holds the rows asked for. The server backend doing the work is reniced. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenomy.db.engine import PostgresDatabase
from tokenomy.ledger.migrate import upgrade
from tokenomy.ledger.queries import Window, _report, reading, spend_report

NAME = "tokenomy_spend_bench"
DAY_US = 86_400_000_000
CHUNK = 500_000

REQUESTS = """
INSERT INTO requests (id, started_us, ended_us, key_id, tenant, endpoint, requested_model, served_model, deployment,
    tier, provider, stream, status, cache_status, attempts, input_tokens, cached_read_tokens, cache_write_tokens,
    output_tokens, reasoning_tokens, usage_source, cost_pusd, counterfactual_pusd, saving_pusd, client_disconnected)
SELECT 'r' || g, %(end)s - g * %(step)s, %(end)s - g * %(step)s + 500000, 'key_' || (g %% 50), 'team' || (g %% 10),
    'chat.completions', 'model-' || (g %% 8), 'model-' || (g %% 8), 'dep' || (g %% 6),
    (ARRAY['small', 'medium', 'frontier'])[1 + g %% 3], 'openai', g %% 2, CASE WHEN g %% 97 = 0 THEN 500 ELSE 200 END,
    CASE WHEN g %% 7 = 0 THEN 'hit' ELSE 'miss' END, 1, 100 + g %% 400, g %% 50, 0, 20 + g %% 200, 0, 'upstream',
    1000000 + (g %% 1000) * 1000, 5000000, 4000000 - (g %% 1000) * 1000, 0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""

CALLS = """
INSERT INTO calls (id, request_id, attempt, started_us, ended_us, deployment, provider, model, tier, outcome,
    input_tokens, cached_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
    usage_source, cost_pusd)
SELECT 'c' || g, 'r' || g, 1, %(end)s - g * %(step)s, %(end)s - g * %(step)s + 400000, 'dep' || (g %% 6), 'openai',
    'model-' || (g %% 8), (ARRAY['small', 'medium', 'frontier'])[1 + g %% 3],
    CASE WHEN g %% 97 = 0 THEN 'error' ELSE 'ok' END, 100 + g %% 400, g %% 50, 0, 0, 20 + g %% 200, 0, 'upstream',
    1000000 + (g %% 1000) * 1000
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""


def generate(url: str, rows: int, end_us: int) -> float:
    import psycopg

    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        subprocess.run(["renice", "-n", "10", "-p", str(pid)], check=False, capture_output=True)
        (have,) = conn.execute("SELECT COUNT(*) FROM requests").fetchone()  # type: ignore[misc]
        step = 90 * DAY_US // rows
        for lo in range(int(have) + 1, rows + 1, CHUNK):
            hi = min(rows, lo + CHUNK - 1)
            for sql in (REQUESTS, CALLS):
                conn.execute(sql, {"end": end_us, "step": step, "lo": lo, "hi": hi})
            print(f"generated {hi:,} rows in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
        conn.execute("ANALYZE requests")
        conn.execute("ANALYZE calls")
        conn.execute("ANALYZE spend_rollup")
        conn.execute("ANALYZE calls_rollup")
    return time.perf_counter() - began


def timed(fn: Any, repeats: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--drop", action="store_true", help="drop the generated database afterwards")
    args = parser.parse_args()
    url = args.url.rsplit("/", 1)[0] + f"/{NAME}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NAME,)).fetchone() is None:
            admin.execute(f"CREATE DATABASE {NAME}")
    upgrade(url)
    meta = Path("/tmp/tokenomy-spend-bench.json")
    end_us = json.loads(meta.read_text())["end_us"] if meta.exists() else time.time_ns() // 1000
    meta.write_text(json.dumps({"end_us": end_us}))
    generated_s = generate(url, args.rows, end_us)
    database = PostgresDatabase(url, pooled=False)
    now = end_us + 60_000_000
    cases = {"30d": (Window(now - 30 * DAY_US, now), None), "7d by model": (Window(now - 7 * DAY_US, now), "model"),
             "24h by key": (Window(now - DAY_US, now), "key"), "90d by day": (Window(now - 91 * DAY_US, now), "day")}
    results: dict[str, Any] = {}
    for label, (window, by) in cases.items():
        rollup_s, report = timed(lambda w=window, b=by: spend_report(database, w, b))

        def raw(w: Window = window, b: str | None = by) -> dict[str, Any]:
            with reading(database) as tx:
                return _report(tx, w, b)

        raw_s, baseline = timed(raw, repeats=1)
        assert report == baseline, f"{label}: the rollup disagrees with the rows"
        results[label] = {"requests": report["requests"], "rollup_s": round(rollup_s, 3), "rows_s": round(raw_s, 2),
                          "speedup": round(raw_s / rollup_s, 1)}
    env = {**os.environ, "TOKENOMY_DATABASE_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cli_s, _ = timed(lambda: subprocess.run([sys.executable, "-m", "tokenomy", "spend", "--since", "30d", "--json"],
                                            env=env, check=True, capture_output=True))
    import_s, _ = timed(lambda: subprocess.run([sys.executable, "-c", "import tokenomy.cli.main"], env=env,
                                               check=True, capture_output=True))
    with psycopg.connect(url) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("requests", "calls", "spend_rollup", "calls_rollup")}
    print(json.dumps({"rows": counts, "generate_s": round(generated_s), "queries": results,
                      "tokenomy_spend_30d_wall_s": round(cli_s, 2), "python_start_and_import_s": round(import_s, 2)},
                     indent=1))
    if args.drop:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
