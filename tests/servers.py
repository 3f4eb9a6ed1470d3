"""Real servers on loopback for tests: the gateway (uvicorn in a thread), the fault upstream, llama.cpp's server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import uvicorn
from aiohttp import web

from tokenomy.api.app import create_app
from tokenomy.config.settings import Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Does a Redis server answer on ``host:port``? (Pair with :func:`need`.)"""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing on a user's machine; under CI a missing part is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def run_gateway(settings: Settings, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``create_app(settings)`` on a free loopback port; yields the base URL (``.../v1``)."""
    port = free_port()
    config = uvicorn.Config(create_app(settings, env=env or {}), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, loop="uvloop", http="httptools", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``tokenomy serve --config CONFIG --port PORT`` as a user runs it, once its /healthz answers (stderr kept for
    the failure message)."""
    proc = subprocess.Popen([sys.executable, "-m", "tokenomy", "serve", "--config", str(config), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)


@contextlib.contextmanager
def run_aiohttp(app: web.Application) -> Iterator[str]:
    """Serve an aiohttp app on a free loopback port in its own thread and loop; yields its base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(_shutdown(runner), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@contextlib.contextmanager
def run_fault_upstream() -> Iterator[tuple[str, FaultUpstream]]:
    upstream = FaultUpstream()
    with run_aiohttp(upstream.app()) as base:
        yield f"{base}/v1", upstream


async def _shutdown(runner: web.AppRunner) -> None:
    await runner.cleanup()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def bundled_gguf() -> Path | None:
    try:
        from tokenomy.providers.local_llama import bundled_model_path

        path = bundled_model_path()
    except Exception:
        return None
    return path if path.is_file() else None


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and bundled_gguf() is not None


@contextlib.contextmanager
def run_llama_server(models: list[dict[str, object]] | None = None) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on the bundled SmolLM2, as a real upstream. ``models``: its
    multi-model config (``model_alias``, ``lora_path``, …; each entry's ``model`` defaults to the bundled GGUF)."""
    gguf = bundled_gguf()
    assert gguf is not None
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; a pipe nobody reads would fill up and stall the server
    with tempfile.TemporaryDirectory() as tmp:
        if models is None:
            args = ["--model", str(gguf), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                    "--model_alias", "smollm2"]
        else:
            config = Path(tmp) / "llama-server.json"
            config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": [
                {"model": str(gguf), "n_ctx": 2048, **m} for m in models]}))
            args = ["--config_file", str(config)]
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", *args], stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_for_llama(proc, f"http://127.0.0.1:{port}/v1", log)
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            proc.kill()
            log.close()


def _wait_for_llama(proc: subprocess.Popen[bytes], base: str, log: IO[bytes]) -> str:
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited: {log.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(urllib.error.URLError, OSError), \
                urllib.request.urlopen(f"{base}/models", timeout=1) as resp:
            if resp.status == 200:
                return base
        if time.monotonic() > deadline:
            raise RuntimeError("llama_cpp.server did not come up in 90 s")
        time.sleep(0.2)
