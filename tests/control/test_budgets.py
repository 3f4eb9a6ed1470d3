"""Budget stores and periods: the admission rule, SQLite and Redis stores (same rule, atomic), a reservation whose
replica died is released, a period reset happens once (a new counter), spend is rebuilt from the ledger after a
restart, and a broken stream settles on what it generated."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from tests.control.parts import MASTER, REDIS_URL, admin, priced

from servers import run_gateway
from tokenomy.config.settings import CacheConfig, ControlConfig, ExactCacheConfig, LocalConfig, Settings
from tokenomy.control.budgets import BudgetGuard, Reservation, Scope, SQLiteBudgetStore, admit_rule
from tokenomy.control.periods import period_id, period_start_us
from tokenomy.errors import InsufficientQuotaError
from tokenomy.ledger.migrate import upgrade
from tokenomy.testing.fault_upstream import FaultUpstream


def _us(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1_000_000)


def test_admission_rule() -> None:
    assert admit_rule(spent=0, reserved=0, budget=100, amount=40) == "ok"
    assert admit_rule(spent=0, reserved=80, budget=100, amount=40) == "wait"  # in flight may free room
    assert admit_rule(spent=90, reserved=0, budget=100, amount=40) == "ok"  # the last request: nothing in flight
    assert admit_rule(spent=100, reserved=0, budget=100, amount=1) == "refuse"
    assert admit_rule(spent=0, reserved=0, budget=0, amount=1) == "refuse"


def test_periods() -> None:
    at = _us("2026-03-31T23:59:59")
    assert (period_id("daily", at), period_id("monthly", at), period_id("total", at)) == ("2026-03-31", "2026-03",
                                                                                          "total")
    assert period_start_us("daily", at) == _us("2026-03-31T00:00:00")
    assert period_start_us("monthly", at) == _us("2026-03-01T00:00:00")
    assert period_id("daily", at + 1_000_000) == "2026-04-01"


def _stores(tmp_path: Path, redis_prefix: str) -> list[object]:
    from tokenomy.control.redis_budgets import RedisBudgetStore

    upgrade(str(tmp_path / "l.db"))
    return [SQLiteBudgetStore(tmp_path / "l.db"),
            RedisBudgetStore(REDIS_URL, redis_prefix, reservation_ttl_s=0.2)]


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite", "redis"])
def test_store_reserve_settle_and_reset_by_period(tmp_path: Path, redis_prefix: str, which: int) -> None:
    store = _stores(tmp_path, redis_prefix)[which]

    async def run() -> None:
        daily = Scope("key:k1", 100, "daily")
        team = Scope("team:t", 150, "total")
        yesterday, today = _us("2026-05-01T12:00:00"), _us("2026-05-02T00:00:01")
        assert (await store.try_reserve("r1", [daily, team], 60, yesterday)).verdict == "ok"  # type: ignore[attr-defined]
        second = await store.try_reserve("r2", [daily, team], 60, yesterday)  # type: ignore[attr-defined]
        assert (second.verdict, second.scope) == ("wait", "key:k1")
        await store.settle(Reservation("r1", 60, [daily.counter(yesterday), team.counter(yesterday)]), 100)  # type: ignore[attr-defined]
        refused = await store.try_reserve("r3", [daily, team], 1, yesterday)  # type: ignore[attr-defined]
        assert (refused.verdict, refused.scope, refused.spent_pusd) == ("refuse", "key:k1", 100)
        # the next day is a new counter for the daily key budget; the team's total budget still counts it all
        fresh = await store.try_reserve("r4", [daily, team], 40, today)  # type: ignore[attr-defined]
        assert fresh.verdict == "ok"
        assert await store.read([daily.counter(yesterday), daily.counter(today), team.counter(today)]) == [  # type: ignore[attr-defined]
            (100, 0), (0, 40), (100, 40)]
        await store.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())


def test_redis_releases_a_reservation_whose_replica_died(tmp_path: Path, redis_prefix: str) -> None:
    store = _stores(tmp_path, redis_prefix)[1]
    scope = Scope("key:k2", 100, "total")

    async def run() -> None:
        now = time.time_ns() // 1000
        assert (await store.try_reserve("dead", [scope], 100, now)).verdict == "ok"  # type: ignore[attr-defined]
        assert (await store.try_reserve("live", [scope], 50, now)).verdict == "wait"  # type: ignore[attr-defined]
        later = now + 300_000  # past reservation_ttl_s = 0.2
        assert (await store.try_reserve("live", [scope], 50, later)).verdict == "ok"  # type: ignore[attr-defined]
        assert await store.read([scope.counter(later)]) == [(0, 50)]  # type: ignore[attr-defined]
        await store.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())


def test_guard_waits_for_settlements_then_refuses_what_can_never_fit(tmp_path: Path) -> None:
    upgrade(str(tmp_path / "l.db"))
    guard = BudgetGuard(SQLiteBudgetStore(tmp_path / "l.db"), wait_s=2.0)
    scope = [Scope("key:k3", 100, "total")]

    async def run() -> None:
        first = await guard.reserve("a", scope, 80)
        waiting = asyncio.create_task(guard.reserve("b", scope, 80))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await guard.settle(first, 30)  # 30 spent, nothing in flight: b goes as the last request
        second = await asyncio.wait_for(waiting, 1)
        await guard.settle(second, 70)
        with pytest.raises(InsufficientQuotaError, match=r"has spent \$0\.0000000001 of its \$0\.0000000001"):
            await guard.reserve("c", scope, 1)

    asyncio.run(run())


def _gateway_settings(base: str, home: Path) -> Settings:
    return Settings(deployments=[priced("echo", base, "echo"), priced("break", base, "break-stream", max_retries=0)],
                    local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                    control=ControlConfig(master_key=MASTER), cache=CacheConfig(exact=ExactCacheConfig(mode="off")))


def test_spend_survives_a_restart_and_a_broken_stream_settles_on_what_it_generated(
        fault: tuple[str, FaultUpstream], tmp_path: Path) -> None:
    home = tmp_path / "home"
    with run_gateway(_gateway_settings(fault[0], home)) as url:
        created = admin(url, "POST", "/admin/keys", {"name": "persist", "budget_usd": "0.01"})[1]
        client = openai.OpenAI(base_url=url, api_key=created["key"], max_retries=0)
        for _ in range(3):
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello there"}])
        with pytest.raises(openai.APIError):
            for _ in client.chat.completions.create(model="break", stream=True, max_tokens=500,
                                                    messages=[{"role": "user", "content": "one two three four"}]):
                pass
        time.sleep(0.3)
        before = admin(url, "GET", f"/admin/keys/{created['id']}")[1]["budgets"][0]
    assert before["reserved_usd"] == "0"  # the broken stream's reservation was settled, not leaked
    with sqlite3.connect(home / "ledger.db") as db:
        rows = db.execute("SELECT cost_pusd, id FROM requests WHERE key_id = ? ORDER BY started_us",
                          (created["id"],)).fetchall()
        broken = db.execute("SELECT usage_source, output_tokens FROM calls WHERE request_id = ?",
                            (rows[-1][1],)).fetchone()
    assert len(rows) == 4 and rows[-1][0] > 0 and broken[0] == "counted" and broken[1] > 0  # what it streamed
    ledger_usd = Decimal(sum(r[0] for r in rows)) / Decimal(10**12)
    assert Decimal(before["spent_usd"]) == ledger_usd
    with run_gateway(_gateway_settings(fault[0], home)) as url:  # a new process: counters rebuilt from the ledger
        after = admin(url, "GET", f"/admin/keys/{created['id']}")[1]["budgets"][0]
    assert after["spent_usd"] == before["spent_usd"] and after["reserved_usd"] == "0"
