"""The processes bench/overhead.py measures: each on a free loopback port, in its own process group, optionally pinned
to a core, checked with one real request before use, read through /proc while it runs, and always stopped."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
LITELLM_BIN = BENCH / ".venv-litellm" / "bin" / "litellm"
LITELLM_KEY = "sk-bench-only"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ServiceError(RuntimeError):
    """A process under test did not start, or did not answer a chat completion correctly."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int | None, argv: list[str]) -> list[str]:
    """``argv`` under ``taskset -c core`` (all its threads and children inherit it), or unchanged for None."""
    if core is None:
        return argv
    if shutil.which("taskset") is None:
        raise ServiceError("taskset not found (util-linux); run with --no-pin")
    return ["taskset", "-c", str(core), *argv]


def cpu_by_process() -> dict[int, float]:
    """CPU seconds of every process on the machine, its reaped children's included (utime + stime + cutime +
    cstime): the same accounting as ``Service.cpu_s``, so the two can be subtracted (/proc/stat's per-core
    totals are sampled differently and disagree with per-process times by tens of percent on this VM)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            found[int(stat.parent.name)] = sum(int(v) for v in fields[11:15]) / CLK_TCK
    return found


@dataclass
class Service:
    name: str
    chat_url: str
    popen: subprocess.Popen[bytes]
    log: Path
    bearer: str = ""

    def pids(self) -> list[int]:
        """The process and all its descendants (granian and LiteLLM may fork workers)."""
        found, todo = [], [self.popen.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(child) for child in task.read_text().split())
        return found

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the whole process tree."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def memory_mb(self, key: str = "VmHWM") -> float:
        """Summed over the tree: VmHWM is each process's peak resident set so far, VmRSS the current one."""
        total_kb = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key + ":"):
                        total_kb += int(line.split()[1])
        return total_kb / 1024

    def memory_by_process(self) -> list[dict[str, Any]]:
        """Per process: its command, peak and current RSS, and PSS (shared pages split between sharers)."""
        found: list[dict[str, Any]] = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                fields = _kb_fields(Path(f"/proc/{pid}/status").read_text())
                pss = _kb_fields(Path(f"/proc/{pid}/smaps_rollup").read_text()).get("Pss", 0)
                found.append({"pid": pid, "cmd": cmd.strip()[:160], "peak_rss_mb": fields.get("VmHWM", 0) / 1024,
                              "rss_mb": fields.get("VmRSS", 0) / 1024, "pss_mb": pss / 1024})
        return found

    def first_log_line(self, containing: str) -> str | None:
        return next((line for line in self.log_tail(100_000).splitlines() if containing in line), None)

    def settle(self, *, idle_share: float = 0.05, limit_s: float = 30.0) -> float:
        """Wait (at most ``limit_s``) until the tree uses under ``idle_share`` of a core: a target that fell behind
        is still working through its backlog, which must not leak into the next measurement. Returns seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            before = self.cpu_s()
            time.sleep(0.3)
            if (self.cpu_s() - before) / 0.3 < idle_share:
                break
        return time.monotonic() - start

    def log_tail(self, chars: int = 2000) -> str:
        return _tail(self.log, chars)


def _kb_fields(text: str) -> dict[str, int]:
    """``Name:   123 kB`` lines of /proc/PID/status or smaps_rollup as {name: kB}."""
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            found[name] = int(parts[0])
    return found


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str], log: Path,
            cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in a process group of its own, output to ``log``; stop the whole group on exit."""
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            yield popen
        finally:
            _stop(popen)


def wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, timeout_s: float = 90.0,
               log: Path | None = None) -> None:
    """Poll ``url`` until it answers below 500; fail early, with the log's tail, if ``proc`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with status {proc.returncode} while starting:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except OSError:  # refused while starting, or an HTTPError (5xx)
            time.sleep(0.25)
    raise ServiceError(f"{name} did not answer {url} within {timeout_s:.0f} s:\n{_tail(log)}")


def _tail(log: Path | None, chars: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:] if log is not None else ""
    except OSError:
        return ""


@contextlib.contextmanager
def running(name: str, argv: list[str], *, env: dict[str, str], workdir: Path, health_url: str, chat_url: str,
            bearer: str = "", ready_s: float = 60.0) -> Iterator[Service]:
    """Start ``argv``; yield once ``health_url`` answers and one chat completion through ``chat_url`` succeeds."""
    log = workdir / f"{name}.log"
    with started(argv, env, log, cwd=workdir) as popen:
        service = Service(name, chat_url, popen, log, bearer)
        wait_ready(health_url, popen, name, ready_s, log)
        _check_chat(service)
        yield service


def _check_chat(service: Service) -> None:
    body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "ready?"}]}).encode()
    headers = {"content-type": "application/json"}
    if service.bearer:
        headers["authorization"] = f"Bearer {service.bearer}"
    request = urllib.request.Request(service.chat_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{service.name}: a chat completion through {service.chat_url} failed: {exc}\n"
                           f"{service.log_tail()}") from exc
    content = answer.get("choices", [{}])[0].get("message", {}).get("content")
    if content != "echo: ready?":
        raise ServiceError(f"{service.name}: unexpected answer {content!r} from {service.chat_url}")


def _stop(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this module created, then SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if popen.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(wait_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)  # workers left behind by a parent that exited on SIGTERM


# The services -------------------------------------------------------------------------------------------------------

def upstream(workdir: Path, core: int | None, env: dict[str, str]) -> contextlib.AbstractContextManager[Service]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = pinned(core, [str(VENV_BIN / "python"), "-m", "tokenomy.testing.fault_upstream", "--port", str(port)])
    return running("upstream", argv, env=env, workdir=workdir, health_url=f"{base}/v1/models",
                   chat_url=f"{base}/v1/chat/completions")


def tokenomy_config(workdir: Path, upstream_service: Service, env: dict[str, str]) -> Path:
    """The gateway's config: one openai_compatible deployment on the zero-delay upstream, no local model."""
    base_url = upstream_service.chat_url.removesuffix("/chat/completions")
    path = workdir / "tokenomy.yaml"
    path.write_text(
        "local: {enabled: false}\n"
        "env_providers: false\n"
        f"home: '{workdir / 'tokenomy-home'}'\n"
        "deployments:\n"
        f"  - {{name: echo, provider: openai_compatible, model: echo, base_url: '{base_url}', tier: small}}\n")
    check = subprocess.run([str(VENV_BIN / "tokenomy"), "config", "show", "--config", str(path)], env=env,
                           capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        raise ServiceError(f"tokenomy config show rejected {path}: {check.stderr.strip() or check.stdout.strip()}")
    return path


def tokenomy_serve(workdir: Path, core: int | None, env: dict[str, str],
                   config: Path) -> contextlib.AbstractContextManager[Service]:
    """The gateway as shipped: ``tokenomy serve``, with whatever HTTP server it defaults to."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = pinned(core, [str(VENV_BIN / "tokenomy"), "serve", "--config", str(config), "--port", str(port)])
    return running("tokenomy", argv, env=env, workdir=workdir, health_url=f"{base}/healthz",
                   chat_url=f"{base}/v1/chat/completions")


def tokenomy_on(server: str, workdir: Path, core: int | None, env: dict[str, str],
                config: Path) -> contextlib.AbstractContextManager[Service]:
    """tokenomy's app (bench/asgi_app.py) under an explicitly chosen ASGI server: ``uvicorn`` (uvloop, httptools)
    or ``granian`` (its ASGI interface, uvloop); one worker each, no access log."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    common = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "asgi_app:create_bench_app"]
    if server == "uvicorn":
        argv = [str(VENV_BIN / "uvicorn"), "--factory", "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
                "--no-access-log", "--workers", "1", *common]
    elif server == "granian":
        argv = [str(VENV_BIN / "granian"), "--interface", "asgi", "--factory", "--workers", "1", "--loop", "uvloop",
                "--no-access-log", *common]
    else:
        raise ValueError(f"unknown ASGI server {server!r}")
    aenv = {**env, "TOKENOMY_CONFIG": str(config),
            "PYTHONPATH": os.pathsep.join(p for p in (str(BENCH), env.get("PYTHONPATH", "")) if p)}
    return running(f"tokenomy-{server}", pinned(core, argv), env=aenv, workdir=workdir,
                   health_url=f"{base}/healthz", chat_url=f"{base}/v1/chat/completions")


def litellm(workdir: Path, core: int | None, env: dict[str, str],
            upstream_service: Service) -> contextlib.AbstractContextManager[Service]:
    """LiteLLM's proxy, one worker, the same upstream as ``openai/echo``; no database, so no spend logs."""
    base_url = upstream_service.chat_url.removesuffix("/chat/completions")
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: echo\n"
        "    litellm_params:\n"
        "      model: openai/echo\n"
        f"      api_base: '{base_url}'\n"
        "      api_key: sk-unused\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = pinned(core, [str(LITELLM_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                         "--num_workers", "1"])
    lenv = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": LITELLM_KEY,
            "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    return running("litellm", argv, env=lenv, workdir=workdir, health_url=f"{base}/health/liveliness",
                   chat_url=f"{base}/v1/chat/completions", bearer=LITELLM_KEY, ready_s=240)
