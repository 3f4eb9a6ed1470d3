"""GET /healthz: liveness plus what the gateway serves. GET /readyz: whether the stores it needs answer now
(the ledger's database, Redis when configured) and the ledger has caught up (its writer is not spilling and its spill
file has been replayed), with the writer's counts; 503 while not — a gateway started while its PostgreSQL was down
serves, degraded, and says 503 here until the database is back and holds every entry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenomy import __version__
from tokenomy.api.responses import json_response, request_id
from tokenomy.db.engine import Database, SQLiteDatabase, reason
from tokenomy.gateway.core import Gateway

PROBE_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    deployments = [{"name": d.name, "model": d.config.model, "tier": d.config.tier, "provider": d.config.provider}
                   for d in gateway.dispatcher.catalog.deployments]
    return json_response({"status": "ok", "version": __version__, "deployments": deployments,
                          "students": gateway.students.served()},
                         headers={"x-request-id": request_id(request)})


async def readyz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    checks = {"database": await _timed(_database(gateway.ledger_source))}
    if gateway.settings.redis_url:
        checks["redis"] = await _timed(_redis(gateway.settings.redis_url))
    checks["ledger"] = {"ok": gateway.ledger.caught_up} if gateway.ledger.caught_up else {
        "ok": False, "error": "the ledger store is down or its spill file is not replayed yet"}
    ready = all(c["ok"] for c in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks,
                            "ledger": gateway.ledger.stats()}
    return json_response(body, status=200 if ready else 503, headers={"x-request-id": request_id(request),
                                                                      "cache-control": "no-store"})


async def _timed(probe: Any) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        await asyncio.wait_for(probe, PROBE_TIMEOUT_S)
        result: dict[str, Any] = {"ok": True}
    except TimeoutError:
        result = {"ok": False, "error": f"no answer in {PROBE_TIMEOUT_S:g} s"}
    except Exception as exc:  # any failure of the probe is the answer, not an error of ours
        result = {"ok": False, "error": reason(exc)}
    result["ms"] = round((time.perf_counter() - began) * 1000, 1)
    return result


async def _database(source: Any) -> None:
    if not isinstance(source, Database) or isinstance(source, SQLiteDatabase):
        return  # the embedded SQLite file: its writers report their own failures

    def select_one() -> None:
        with source.read() as tx:
            tx.execute("SELECT 1").fetchone()

    await asyncio.to_thread(select_one)


async def _redis(url: str) -> None:
    from redis.asyncio import Redis

    client: Any = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        await client.ping()
    finally:
        await client.aclose()
