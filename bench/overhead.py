"""Gateway overhead: the zero-delay upstream called directly vs through tokenomy vs through LiteLLM, in one run.

    .venv/bin/python bench/overhead.py [--quick] [--out bench/results/NAME.json] [--no-pin] [--skip-litellm]

Every server is its own process on a free loopback port: the zero-delay upstream (tokenomy.testing.fault_upstream,
model ``echo``), tokenomy as shipped (``tokenomy serve``, no local model), LiteLLM's proxy 1.109.1 (one worker;
bench/setup_litellm.sh installs it into bench/.venv-litellm, skipped when absent) and, for the ASGI-server
comparison, tokenomy's app under uvicorn and under granian. The load generator (bench/loadgen.py) is a process of
its own. On two or more cores the gateway under test gets core 1 to itself; the load generator and the upstream
share core 0 (taskset), so the direct baseline and every gateway see the same client and upstream.

Per target and mode (plain, and ``stream: true`` with a short answer): open-loop latency at 100 / 500 / 1000 offered
requests/s (from each request's release to its last byte), the maximum throughput with a closed loop of 64 requests
in flight, and the process tree's peak RSS (VmHWM). Added latency = target percentile − direct percentile at the
same load and mode in this run. Then the stack choices: uvicorn vs granian under the same app, aiohttp vs httpx as
the upstream client. Prints the tables and writes every point's summary as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules: bench/ is not a package

import services
from bench_report import print_report, verdicts
from measure import BenchError, Plan, measure
from services import VENV_BIN as BIN
from services import Service, free_port, started, wait_ready
from stack_choices import calibrate_loadgen, compare_clients

# BIN, free_port, started and wait_ready are re-exported for bench/ledger_check.py, which starts its servers with them.
__all__ = ["BIN", "free_port", "main", "run", "started", "wait_ready"]


def run(plan: Plan, *, skip_litellm: bool, skip_asgi: bool, commit: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {"plan": asdict(plan), "machine": machine(plan), "targets": {}}
    with tempfile.TemporaryDirectory(prefix="tokenomy-bench-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "HOME": str(workdir), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1"}
        if commit is not None:
            env["PYTHONPATH"] = str(_checkout_src(commit, workdir))
            report["machine"]["source"] = f"{_git('rev-parse', '--short', commit)} (git archive, not the working tree)"
        with services.upstream(workdir, plan.loadgen_core, env) as upstream:
            print("load generators, closed loop against the upstream ...", flush=True)
            report["loadgen_calibration"] = calibrate_loadgen(upstream, plan, workdir)
            report["targets"]["direct"] = measure(upstream, plan, upstream=None)
            config = services.tokenomy_config(workdir, upstream, env)
            with services.tokenomy_serve(workdir, plan.gateway_core, env, config) as gateway:
                report["targets"]["tokenomy"] = measure(gateway, plan, upstream=upstream)
                report["targets"]["tokenomy"]["served_by"] = gateway.first_log_line("tokenomy gateway on")
            report["targets"]["litellm"] = _litellm(workdir, plan, env, upstream, skip_litellm)
            if not skip_asgi:
                report["asgi"] = {}
                for server in ("uvicorn", "granian"):
                    with services.tokenomy_on(server, workdir, plan.gateway_core, env, config) as gateway:
                        report["asgi"][server] = measure(gateway, plan, upstream=upstream,
                                                         loads=(plan.reference_load,))
            # the drift check: the same baseline again at the end of the run
            report["direct_again"] = measure(upstream, plan, upstream=None, loads=(plan.reference_load,))
            print("upstream clients micro-benchmark ...", flush=True)
            report["clients"] = compare_clients(upstream, plan)
    report["verdicts"] = verdicts(report)
    return report


def _litellm(workdir: Path, plan: Plan, env: dict[str, str], upstream: Service, skip: bool) -> dict[str, Any]:
    if skip:
        return {"skipped": "--skip-litellm"}
    if not services.LITELLM_BIN.exists():
        message = f"LiteLLM skipped: {services.LITELLM_BIN} not found; create it with bench/setup_litellm.sh"
        print(message, file=sys.stderr)
        return {"skipped": message}
    with services.litellm(workdir, plan.gateway_core, env, upstream) as proxy:
        return measure(proxy, plan, upstream=upstream)


def machine(plan: Plan) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    pinning = ("none" if plan.gateway_core is None else f"gateway under test on core {plan.gateway_core}; "
               f"load generator and upstream on core {plan.loadgen_core}")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "source": _source_state(), "pinning": pinning}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(services.ROOT), *args], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def _source_state() -> str:
    """The commit measured, and whether src/ had uncommitted changes (with a digest of them) at the start."""
    head, diff = _git("rev-parse", "--short", "HEAD"), _git("diff", "HEAD", "--", "src")
    if not head:
        return "not a git checkout"
    if not diff:
        return head
    return f"{head} + uncommitted src changes (digest {hashlib.sha1(diff.encode()).hexdigest()[:10]})"


def _checkout_src(commit: str, workdir: Path) -> Path:
    """``src/`` as of ``commit``, unpacked under ``workdir``; put first on PYTHONPATH, it shadows the editable install
    (so the measurement does not depend on uncommitted edits in the working tree)."""
    target = workdir / "snapshot"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(services.ROOT), "archive", "--format=tar", commit, "src"],
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        raise BenchError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=60)
    return target / "src"


def _loads(text: str) -> tuple[int, ...]:
    try:
        loads = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if min(loads) <= 0:
        raise argparse.ArgumentTypeError(f"offered loads must be positive, got {text!r}")
    return loads


def _plan(args: argparse.Namespace) -> Plan:
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    point_s = args.seconds or (2.0 if args.quick else 8.0)
    reference = 500 if 500 in args.loads else args.loads[len(args.loads) // 2]
    return Plan(point_s=point_s, max_s=min(point_s, 5.0), loads=args.loads, reference_load=reference,
                concurrency=args.concurrency, loadgen_core=0 if pin else None, gateway_core=1 if pin else None)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds the context managers, which stop every server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per point instead of 8 (a smoke run)")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/overhead-<time>.json)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores with taskset")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-asgi", action="store_true", help="skip the uvicorn-vs-granian comparison")
    parser.add_argument("--seconds", type=float, help="seconds per point (overrides --quick)")
    parser.add_argument("--loads", type=_loads, default=(100, 500, 1000), help="offered loads, e.g. 100,500,1000")
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop (maximum throughput) in flight")
    parser.add_argument("--commit", help="measure src/ as of this git commit instead of the working tree")
    args = parser.parse_args()
    plan = _plan(args)
    out = args.out or services.BENCH / "results" / f"overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        report = run(plan, skip_litellm=args.skip_litellm, skip_asgi=args.skip_asgi, commit=args.commit)
    except (BenchError, services.ServiceError) as exc:
        sys.exit(f"benchmark failed: {exc}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print_report(report)
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
