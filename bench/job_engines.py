"""Which job engine runs batch lines across replicas: procrastinate (PostgreSQL) against arq (Redis), one run.

Each engine gets N no-op jobs (as our chunk jobs: a few arguments, awaited work of ``--work-ms``) enqueued one
call each, then one worker running 8 at once drains them; reported: enqueue rate, end-to-end jobs/s, and the ratio
between the engines. How each redelivers the job of a dead worker is read from its code and docs, not timed here
(docs/scale.md): procrastinate by worker heartbeats (a stalled job is handed back after ``stalled_after_s``
whatever its length), arq by the expiry of the job's in-progress key (its ``job_timeout`` + 10 s, so a long chunk
either delays recovery or is cut off).

    PYTHONPATH=src .venv/bin/python bench/job_engines.py [--jobs 2000]   (arq: pip install arq; not a dependency)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DONE: list[float] = []


async def procrastinate_run(admin_url: str, jobs: int, work_ms: float) -> dict[str, float]:
    import procrastinate
    import psycopg

    from tokenomy.ledger.migrate import upgrade

    name = f"tokenomy_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=6))

        @app.task(name="chunk")
        async def chunk(batch_id: str, first: int, last: int) -> None:
            await asyncio.sleep(work_ms / 1000)
            DONE.append(time.perf_counter())

        async with app.open_async():
            began = time.perf_counter()
            for i in range(jobs):
                await app.configure_task("chunk", lock=f"b:{i % 8}").defer_async(batch_id="b", first=i, last=i)
            enqueued = time.perf_counter()
            DONE.clear()
            worker = asyncio.create_task(app.run_worker_async(concurrency=8, install_signal_handlers=False,
                                                              delete_jobs="successful"))
            while len(DONE) < jobs:
                await asyncio.sleep(0.01)
            finished = time.perf_counter()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        return {"enqueue_per_s": jobs / (enqueued - began), "jobs_per_s": jobs / (finished - enqueued)}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def arq_run(redis_url: str, jobs: int, work_ms: float) -> dict[str, float]:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    async def chunk(ctx: Any, batch_id: str, first: int, last: int) -> None:
        await asyncio.sleep(work_ms / 1000)
        DONE.append(time.perf_counter())

    queue = f"tokenomy-bench-{uuid.uuid4().hex[:8]}"
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings, default_queue_name=queue)
    try:
        began = time.perf_counter()
        for i in range(jobs):
            await pool.enqueue_job("chunk", "b", i, i)
        enqueued = time.perf_counter()
        DONE.clear()
        worker = Worker(functions=[func(chunk, name="chunk")], redis_pool=pool, queue_name=queue, max_jobs=8,
                        handle_signals=False,
                        poll_delay=0.05, keep_result=0)
        task = asyncio.create_task(worker.async_run())
        while len(DONE) < jobs:
            await asyncio.sleep(0.01)
        finished = time.perf_counter()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.close()
        await pool.delete(queue)
        return {"enqueue_per_s": jobs / (enqueued - began), "jobs_per_s": jobs / (finished - enqueued)}
    finally:
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--work-ms", type=float, default=5.0)
    args = parser.parse_args()
    results = {"procrastinate (PostgreSQL)": asyncio.run(procrastinate_run(args.pg, args.jobs, args.work_ms))}
    try:
        results["arq (Redis)"] = asyncio.run(arq_run(args.redis, args.jobs, args.work_ms))
    except ImportError:
        results["arq (Redis)"] = {"skipped": "arq is not installed"}  # type: ignore[dict-item]
    base = results["procrastinate (PostgreSQL)"]["jobs_per_s"]
    print(json.dumps({"jobs": args.jobs, "work_ms": args.work_ms, "worker_concurrency": 8,
                      "results": {k: {m: round(v, 1) for m, v in r.items()} if "skipped" not in r else r
                                  for k, r in results.items()},
                      "jobs_per_s_ratio_to_procrastinate": {k: round(r["jobs_per_s"] / base, 2)
                                                            for k, r in results.items() if "jobs_per_s" in r}},
                     indent=1))


if __name__ == "__main__":
    main()
