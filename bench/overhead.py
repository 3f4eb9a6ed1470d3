"""Gateway overhead: tokenomy vs the upstream called directly vs LiteLLM's proxy, measured in one run.

    .venv/bin/python bench/overhead.py [--quick] [--seconds S] [--out bench/results/NAME.json]

Every server is its own process on loopback: the zero-delay upstream (tokenomy.testing.fault_upstream, model
``echo``), tokenomy (``tokenomy serve``: granian, one worker, no local model), the same app on uvicorn with uvloop and
httptools (``--server uvicorn``, the stack comparison), and LiteLLM 1.109.1 (one worker; set up with
bench/setup_litellm.sh, skipped if absent). On a 2-core box the
target gateway is pinned to core 1 and the upstream and load generator to core 0 (taskset), so the gateway under test
has a core of its own and the baseline path (load generator → upstream) is the same for every target.

Per target and mode (plain, streamed): open-loop latency at 100 / 500 / 1000 offered requests/s (p50, p99 from each
request's due time, so queueing counts), then the maximum sustainable throughput (closed loop, 64 in flight), and
the server's peak RSS (VmHWM). Added latency = target percentile − direct percentile at the same load in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LITELLM = ROOT / "bench" / ".venv-litellm" / "bin" / "litellm"
LOADS = (100, 500, 1000)
MASTER = "sk-bench-1234"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() >= 2 \
        else argv


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes] | None = None
    bearer: str = ""
    results: dict[str, Any] = field(default_factory=dict)

    def peak_rss_mb(self) -> float | None:
        """Peak RSS (VmHWM) of the server and its child processes (granian and LiteLLM run workers as children),
        summed: an upper bound of the tree's peak."""
        if self.proc is None:
            return None
        total = 0
        for pid in _tree(self.proc.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        return total / 1024 if total else None


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, headers: dict[str, str] | None = None,
               timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1) as resp:
                if resp.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not become ready at {url} in {timeout_s:.0f} s")


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_load(server: Server, *, rate: float | None, stream: bool, seconds: float, concurrency: int = 64) -> dict[str,
                                                                                                                 Any]:
    argv = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--url", server.url, "--seconds", str(seconds)]
    argv += ["--rate", str(rate)] if rate else ["--concurrency", str(concurrency)]
    if stream:
        argv.append("--stream")
    if server.bearer:
        argv += ["--bearer", server.bearer]
    out = subprocess.run(pinned(0, argv), capture_output=True, text=True, timeout=seconds * 4 + 60, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def settle(server: Server, timeout_s: float = 120) -> None:
    """Wait until the server answers one request within 100 ms: an overloaded point's backlog must not bleed into
    the next point's figures."""
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "settle"}]}).encode()
    headers = {"content-type": "application/json"}
    if server.bearer:
        headers["authorization"] = f"Bearer {server.bearer}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            with urllib.request.urlopen(urllib.request.Request(server.url, data=body, headers=headers),
                                        timeout=30) as resp:
                resp.read()
            if time.monotonic() - start < 0.1:
                return
        except OSError:
            pass
        time.sleep(1)


def measure(server: Server, seconds: float) -> None:
    run_load(server, rate=None, stream=False, seconds=1, concurrency=16)  # warm-up: connections, caches
    for stream in (False, True):
        mode = "stream" if stream else "plain"
        settle(server)
        server.results[f"{mode}@max"] = run_load(server, rate=None, stream=stream, seconds=seconds)
        for rate in LOADS:
            settle(server)
            server.results[f"{mode}@{rate}"] = run_load(server, rate=rate, stream=stream, seconds=seconds)
    server.results["peak_rss_mb"] = server.peak_rss_mb()


def write_configs(tmp: Path, upstream: str) -> tuple[Path, Path]:
    tokenomy_cfg = tmp / "tokenomy.yaml"
    tokenomy_cfg.write_text(
        "server: {log_level: warning}\nlocal: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\n"
        f"deployments:\n  - {{name: echo, provider: openai_compatible, model: echo, base_url: '{upstream}', "
        "tier: small}\n")
    litellm_cfg = tmp / "litellm.yaml"
    litellm_cfg.write_text(
        "model_list:\n  - model_name: echo\n    litellm_params:\n      model: openai/echo\n"
        f"      api_base: '{upstream}'\n      api_key: unused\n"
        "litellm_settings:\n  drop_params: true\n  set_verbose: false\n")
    return tokenomy_cfg, litellm_cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per point instead of 6")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overhead.json")
    parser.add_argument("--no-uvicorn", action="store_true", help="skip tokenomy on uvicorn (the stack comparison)")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 6.0)
    tmp = Path(tempfile.mkdtemp(prefix="tokenomy-bench-"))
    env = {**os.environ, "HOME": str(tmp), "TOKENOMY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
    up_port, tk_port, ll_port, gr_port = (free_port() for _ in range(4))
    upstream = f"http://127.0.0.1:{up_port}/v1"
    tokenomy_cfg, litellm_cfg = write_configs(tmp, upstream)
    servers: list[Server] = []
    with started(pinned(0, [str(BIN / "python"), "-m", "tokenomy.testing.fault_upstream", "--port", str(up_port)]),
                 env, tmp / "upstream.log") as up:
        wait_ready(f"{upstream}/models", up, "upstream")
        direct = Server("direct", f"{upstream}/chat/completions", up)
        measure(direct, seconds)
        direct.results["peak_rss_mb"] = None  # the upstream's own memory is not a gateway's
        servers.append(direct)
        targets = [("tokenomy", lambda: _tokenomy("tokenomy", "granian", env, tk_port, tokenomy_cfg, tmp, seconds))]
        if not args.no_uvicorn:
            targets.append(("tokenomy-uvicorn",
                            lambda: _tokenomy("tokenomy-uvicorn", "uvicorn", env, gr_port, tokenomy_cfg, tmp, seconds)))
        if LITELLM.exists():
            targets.append(("litellm", lambda: _litellm(env, ll_port, litellm_cfg, tmp, seconds)))
        else:
            print(f"LiteLLM skipped: {LITELLM} not found; run bench/setup_litellm.sh", file=sys.stderr)
        for name, run in targets:
            try:
                servers.append(run())
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"{name} skipped: {exc} (logs in {tmp})", file=sys.stderr)
    report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "seconds_per_point": seconds,
              "servers": {s.name: s.results for s in servers}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    from bench_report import print_report

    print_report(report)
    print(f"raw results: {args.out}")


def _tokenomy(name: str, http_server: str, env: dict[str, str], port: int, cfg: Path, tmp: Path,
              seconds: float) -> Server:
    argv = [str(BIN / "tokenomy"), "serve", "--config", str(cfg), "--port", str(port), "--server", http_server]
    with started(pinned(1, argv), env, tmp / f"{name}.log") as proc:
        wait_ready(f"http://127.0.0.1:{port}/healthz", proc, name)
        server = Server(name, f"http://127.0.0.1:{port}/v1/chat/completions", proc)
        measure(server, seconds)
    return server


def _litellm(env: dict[str, str], port: int, cfg: Path, tmp: Path, seconds: float) -> Server:
    lenv = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": MASTER, "LITELLM_LOG": "ERROR"}
    argv = [str(LITELLM), "--config", str(cfg), "--port", str(port), "--host", "127.0.0.1", "--num_workers", "1"]
    with started(pinned(1, argv), lenv, tmp / "litellm.log") as proc:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proc, "litellm", timeout_s=180)
        server = Server("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", proc, bearer=MASTER)
        measure(server, seconds)
    return server


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
