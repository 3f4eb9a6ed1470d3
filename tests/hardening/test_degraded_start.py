"""A gateway starts while its PostgreSQL is down (issue 20): on 939b14d it could not start at all, though the spill
file existed. Now it serves, degraded (ledger entries spilled, ``/readyz`` 503), and catches up when the database
returns: every request served is one row, none lost, none twice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.hardening.parts import JSON, chat_body, echo_settings, request
from tests.scale.parts import PostgresCluster

from servers import run_gateway
from tokenomy.config.settings import LedgerConfig
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    pg = PostgresCluster()  # initialised, not started: the database is down
    try:
        yield pg
    finally:
        pg.remove()


def _ready(root: str) -> tuple[int, dict[str, object]]:
    status, _, body = request(root + "/readyz")
    return status, json.loads(body)


def test_starts_degraded_and_catches_up(cluster: PostgresCluster, fault: tuple[str, FaultUpstream],
                                        tmp_path: Path) -> None:
    import psycopg

    base, _ = fault
    settings = echo_settings(base, home=str(tmp_path), ledger=LedgerConfig(database_url=cluster.url))
    with run_gateway(settings) as url:
        root = url.removesuffix("/v1")
        status, ready = _ready(root)
        assert status == 503 and ready["ledger"]["store"] == "down"  # type: ignore[index]
        served = [request(url + "/chat/completions", "POST", chat_body(text=f"q{i}"), JSON) for i in range(5)]
        assert [s for s, _, _ in served] == [200] * 5
        time.sleep(0.5)
        assert (tmp_path / "ledger-spill.jsonl").exists()
        cluster.start()
        began = time.monotonic()
        while _ready(root)[0] != 200:
            assert time.monotonic() - began < 60, _ready(root)
            time.sleep(0.25)
        ids = {headers["x-request-id"] for _, headers, _ in served}
    with psycopg.connect(cluster.url) as db:
        rows = [r[0] for r in db.execute("SELECT id FROM requests").fetchall()]
    assert sorted(rows) == sorted(ids)  # each served request once: none lost, none twice
