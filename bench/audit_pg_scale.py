"""How `tokenomy audit postgresql://…` scales: N ledger rows generated inside a fresh PostgreSQL database (three
models, 10 minutes apart, a fifth with no recorded cost), audited by the real CLI in a child process with
`--json --no-semantic`. Reports wall time and the child's peak RSS; the database is dropped afterwards.

    python bench/audit_pg_scale.py --requests 1000000 [--admin-url postgresql://127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid

import psycopg

from tokenomy.ledger.migrate import upgrade

_ROWS = """
INSERT INTO requests (id, started_us, ended_us, endpoint, requested_model, served_model, stream, status,
    cache_status, attempts, input_tokens, cached_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    usage_source, cost_pusd, client_disconnected)
SELECT 'r' || g, 1772445600000000 + g * 600000, 1772445600000000 + g * 600000 + 1000, 'chat.completions',
    (ARRAY['gpt-4o', 'gpt-4.1-mini', 'gpt-4.1'])[1 + g %% 3], NULL, g %% 2, 200, 'miss', 1, 1000 + g %% 500, 0, 0,
    100 + g %% 50, 0, 'upstream', CASE WHEN g %% 5 = 0 THEN NULL ELSE 1000000000 END, 0
FROM generate_series(1::bigint, %s) g
"""

# the child: the real CLI, then its own peak RSS on stderr
_CHILD = """
import resource, sys
from tokenomy.cli.main import cli
sys.argv = ["tokenomy", "audit", sys.argv[1], "--json", "--no-semantic"]
try:
    cli()
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    name = f"tokenomy_audit_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        started = time.monotonic()
        with psycopg.connect(url) as conn:
            conn.execute("ALTER TABLE requests DISABLE TRIGGER USER")  # the rollups do not matter to the audit
            conn.execute(_ROWS, (args.requests,))
        print(f"generated {args.requests:,} rows in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        child = subprocess.run([sys.executable, "-c", _CHILD, url], capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if child.returncode != 0:
            sys.exit(child.stderr)
        doc = json.loads(child.stdout)
        assert doc["requests"] == args.requests, doc["requests"]
        rss_mb = int(child.stderr.strip().splitlines()[-1]) / 1024
        print(f"audited {doc['requests']:,} rows in {wall:.1f} s, peak RSS {rss_mb:.0f} MB")
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
