"""Shared parts of the scale-out tests: a fresh PostgreSQL database per test on the shared server (dropped after),
a Redis prefix per test, and throwaway servers of our own (redis-server, a PostgreSQL cluster) that tests may stop
and start mid-load. The shared servers on 5432/6379 are never stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from servers import free_port, need

PG_ADMIN_URL = os.environ.get("TOKENOMY_TEST_PG", "postgresql://127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_available(url: str = PG_ADMIN_URL) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:
        return False


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def fresh_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server; its URL. Dropped afterwards (connections and all)."""
    need(pg_available(admin_url), f"PostgreSQL at {admin_url} for the scale-out tests")
    import psycopg

    name = f"tokenomy_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class RedisServer:
    """A redis-server of our own on a free port (no persistence), to stop and start under load."""

    def __init__(self) -> None:
        need(shutil.which("redis-server") is not None, "redis-server for the Redis outage tests")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                                       "--daemonize", "no", "--bind", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import redis

        while True:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb in a temporary directory, run as the ``postgres`` user when we are
    root, because initdb refuses root), on a free port; trust auth, database ``postgres``."""

    def __init__(self) -> None:
        need((PG_BIN / "initdb").exists(), f"PostgreSQL server binaries in {PG_BIN} for the outage tests")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tokenomy-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: dict[str, str] = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
        if self._user:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **self._user)

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
             "-h", "127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **self._user)
        deadline = time.monotonic() + 30
        while not pg_available(self.url):
            assert self._proc.poll() is None, "postgres exited"
            assert time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT): what a crashed or unreachable server looks like to its clients."""
        if self._proc is not None:
            self._proc.send_signal(3)
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


RESULTS = Path(os.environ.get("TOKENOMY_SCALE_RESULTS", "/tmp/tokenomy-scale-results.jsonl"))


def record(test: str, **figures: object) -> None:
    """Append a test's measured figures (what docs/scale.md quotes) to the results file."""
    import json

    with RESULTS.open("a") as out:
        out.write(json.dumps({"test": test, "at": time.time(), **figures}, default=str) + "\n")
