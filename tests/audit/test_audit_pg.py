"""``tokenomy audit postgresql://…``: a PostgreSQL ledger written by the ledger's own store audits to the same report
as a SQLite ledger holding the same entries, streamed through a server-side cursor in time order; a URL that cannot
be opened, or a database that is not a ledger, is a one-line error that never shows the password."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from tests.scale.parts import fresh_database

from servers import free_port
from tokenomy.audit.pg_ledger import read_pg_ledger
from tokenomy.cli.main import cli
from tokenomy.ledger.migrate import open_store
from tokenomy.ledger.records import CallRow, LedgerEntry, RequestRow
from tokenomy.pricing.cost import TokenUsage

T0 = 1_772_445_600_000_000  # 2026-03-02T10:00:00Z
MODELS = ("gpt-4o", "gpt-4.1-mini", "gpt-4.1", "unlisted-local-model")
COUNT = 60


def entry(i: int) -> dict[str, Any]:
    """Two days of requests over four models (one the catalogue does not price), some with no recorded cost (priced
    from the catalogue by the audit), some streamed, some with cached and reasoning tokens, some with no served
    model (the requested one counts)."""
    at = T0 + i * 2_900_000_000  # about 48 minutes apart
    model = MODELS[i % 4]
    tokens = TokenUsage(input_tokens=1_000 + 37 * i, cached_read_tokens=(i % 3) * 100, cache_write_5m_tokens=i % 2,
                        output_tokens=50 + i, reasoning_tokens=i % 5)
    cost = None if i % 5 == 0 else Decimal(i + 1) / Decimal(10**4)
    call = CallRow(id=f"call_{i}", request_id=f"req_{i}", attempt=1, started_us=at + 1, ended_us=at + 900,
                   deployment="dep", provider="openai", model=model, tier="medium", outcome="ok", tokens=tokens,
                   usage_source="upstream", cost_usd=cost)
    request = RequestRow(id=f"req_{i}", started_us=at, ended_us=at + 1_000, endpoint="chat.completions",
                         requested_model=model, stream=bool(i % 2), status=200, cache_status="miss", attempts=1,
                         tokens=tokens, usage_source="upstream", cost_usd=cost, counterfactual_usd=None,
                         served_model=None if i % 7 == 0 else model)
    return LedgerEntry(request, [call]).as_json()


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The same entries, in shuffled order, in a fresh PostgreSQL ledger and in a SQLite one."""
    rows = [entry(i) for i in range(COUNT)]
    random.Random(3).shuffle(rows)
    sqlite = tmp_path_factory.mktemp("ledger") / "ledger.db"
    with fresh_database() as url:
        pg_store, sqlite_store = open_store(url), open_store(str(sqlite))
        try:
            for at in range(0, COUNT, 25):
                pg_store.write(rows[at:at + 25])
                sqlite_store.write(rows[at:at + 25])
        finally:
            pg_store.close()  # type: ignore[attr-defined]
            sqlite_store.close()  # type: ignore[attr-defined]
        yield url, sqlite


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENOMY_HOME", str(tmp_path / "home"))


def _audit(*logs: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["audit", *logs, "--json", "--no-semantic"])
    return result.exit_code, result.stdout, result.stderr


def test_a_postgres_ledger_audits_like_the_same_sqlite_ledger(ledgers: tuple[str, Path]) -> None:
    url, sqlite = ledgers
    code, out, err = _audit(url)
    assert code == 0, err
    from_pg = json.loads(out)
    code, out, err = _audit(str(sqlite))
    assert code == 0, err
    from_sqlite = json.loads(out)
    assert from_pg.pop("formats") == {url: "ledger"}
    assert from_sqlite.pop("formats") == {"ledger.db": "ledger"}
    assert from_pg == from_sqlite
    assert from_pg["requests"] == COUNT
    assert {m: v["requests"] for m, v in from_pg["spend"]["by_model"].items()} == {m: COUNT // 4 for m in MODELS}
    assert 1.9 < from_pg["days"] < 2.0


def test_recorded_costs_and_tokens_come_through(ledgers: tuple[str, Path]) -> None:
    url, _ = ledgers
    records = {round(r.timestamp * 1e6): r for r in read_pg_ledger(url)}
    first, tenth = records[T0 + 2_900_000_000], records[T0 + 10 * 2_900_000_000]
    assert first.model == "gpt-4.1-mini" and first.stream and first.cost_usd == Decimal("0.0002")
    assert first.usage == TokenUsage(input_tokens=1_037, cached_read_tokens=100, cache_write_5m_tokens=1,
                                     output_tokens=51, reasoning_tokens=1)
    assert tenth.model == "gpt-4.1" and tenth.cost_usd is None and not tenth.stream  # the audit prices it
    assert records[T0].model == "gpt-4o"  # no served model: the requested one


def test_rows_stream_in_time_order_through_a_server_side_cursor(ledgers: tuple[str, Path]) -> None:
    """Batches of 7: while the reader is part-way, its connection's last statement is a FETCH from the named
    cursor (a client-side cursor would have run the SELECT and holds every row)."""
    url, _ = ledgers
    reader = read_pg_ledger(url, batch_rows=7)
    seen = [next(reader)]
    with psycopg.connect(url) as conn:
        queries = [q for (q,) in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'")]
    assert len(queries) == 1 and queries[0].startswith("FETCH FORWARD 7 FROM"), queries
    seen += list(reader)
    stamps = [r.timestamp for r in seen]
    assert len(seen) == COUNT and stamps == sorted(stamps)


def test_an_unreachable_url_is_one_line_without_the_password() -> None:
    port = free_port()  # nothing listens there
    for url, shown in ((f"postgresql://audit:hunter2@127.0.0.1:{port}/ledger",
                        f"postgresql://audit:***@127.0.0.1:{port}/ledger"),
                       (f"postgres://127.0.0.1:{port}/ledger?user=audit&password=hunter2",
                        f"postgres://127.0.0.1:{port}/ledger?user=audit&password=***")):
        code, out, err = _audit(url)
        assert code == 2 and out == ""
        assert err.startswith(f"error: cannot open ledger {shown}: ") and "refused" in err
        assert err.count("\n") == 1 and "hunter2" not in err


def test_a_database_without_the_ledger_tables_is_not_a_tokenomy_ledger() -> None:
    with fresh_database() as url:
        code, _, err = _audit(url)
    assert code == 2
    assert err == f'error: {url}: not a tokenomy ledger (relation "requests" does not exist)\n'


def test_file_paths_keep_their_errors(tmp_path: Path) -> None:
    code, _, err = _audit(str(tmp_path / "missing.db"))
    assert code == 2 and err == f"error: {tmp_path / 'missing.db'}: no such file\n"
