"""The side measurements: how much CPU each candidate load generator spends per request (so the one used is shown not
to be the bottleneck), and aiohttp vs httpx as the gateway's upstream client (bench/clients.py)."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import services
from measure import BenchError, Plan, run_loadgen
from services import Service

WRK_SCRIPT = """wrk.method = 'POST'
wrk.body = '{body}'
wrk.headers['Content-Type'] = 'application/json'
"""


def calibrate_loadgen(upstream: Service, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Closed loop, 32 connections, against the upstream on the generator's own core: requests/s and the generator's
    CPU µs per request, for loadgen.py's raw client, the same loop through aiohttp, and wrk when installed."""
    seconds = min(3.0, plan.max_s)
    found: dict[str, Any] = {}
    for client in ("raw", "aiohttp"):
        point = run_loadgen(upstream, plan, upstream=None, stream=False, concurrency=32, seconds=seconds,
                            client=client)
        found[f"loadgen.py ({client})"] = {"rps": point["achieved_rps"],
                                           "cpu_us_per_request": point["loadgen_cpu_us_per_request"]}
    found["wrk -t1 -c32"] = _wrk(upstream, plan, workdir, seconds)
    return found


def _wrk(upstream: Service, plan: Plan, workdir: Path, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "not installed (apt-get install wrk)"}
    script = workdir / "post.lua"
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "benchmark ping with a few words"}]})
    script.write_text(WRK_SCRIPT.format(body=body))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["wrk", "-t1", "-c32", f"-d{max(1, round(seconds))}s", "-s", str(script), upstream.chat_url]
    out = subprocess.run(services.pinned(plan.loadgen_core, argv), capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"(\d+) requests in ([\d.]+)s", out)
    if match is None:
        return {"skipped": f"could not read wrk's output: {out[-300:]!r}"}
    requests, elapsed = int(match.group(1)), float(match.group(2))
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"rps": requests / elapsed, "cpu_us_per_request": cpu_s / requests * 1e6}


def compare_clients(upstream: Service, plan: Plan) -> dict[str, Any]:
    """bench/clients.py, pinned to the gateway's core, under tokenomy's venv (aiohttp, httpx2) and, when it exists,
    LiteLLM's venv (aiohttp, plain httpx: LiteLLM's own dependency, not installed in tokenomy's venv)."""
    found: dict[str, Any] = {}
    pythons = {"tokenomy venv": Path(sys.executable), "litellm venv": services.LITELLM_BIN.parent / "python"}
    requests = 1000 if plan.point_s < 5 else 4000
    for label, python in pythons.items():
        if not python.exists():
            found[label] = {"skipped": f"{python} not found (bench/setup_litellm.sh creates it)"}
            continue
        argv = [str(python), str(services.BENCH / "clients.py"), "--url", upstream.chat_url,
                "--requests", str(requests), "--concurrency", "32"]
        try:
            done = subprocess.run(services.pinned(plan.gateway_core, argv), capture_output=True, text=True,
                                  timeout=600)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"bench/clients.py under {python} did not finish in {exc.timeout:.0f} s") from exc
        if done.returncode != 0:
            raise BenchError(f"bench/clients.py under {python} failed:\n{done.stderr[-2000:]}")
        found[label] = json.loads(done.stdout)
    return found
