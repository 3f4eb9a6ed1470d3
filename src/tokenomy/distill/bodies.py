"""Opt-in storage of request and response bodies per route: the raw material of ``distill tasks`` / ``collect``.

Off by default (``distill.store_bodies.enabled``). When on, every successful chat completion for a stored route
(``routes``: the model names clients ask for; empty means every route) is appended to ``<dir>/<route>.jsonl`` in
the audit's OpenAI JSONL format, ``{"timestamp", "request", "response", "metadata": {"route", "deployment",
"request_id"}}``, after redaction (:mod:`tokenomy.distill.redact`) of the messages and of the reply. Nothing
unredacted is written. Cache hits are not stored (their answer is already stored once). Lines are appended under a
lock with one ``write`` each, so a line is never interleaved with another.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import orjson

from tokenomy.config.settings import Settings, data_home
from tokenomy.distill.redact import redact, redact_messages
from tokenomy.ledger.trace import RequestTrace

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def route_file(directory: Path, route: str) -> Path:
    return directory / f"{_UNSAFE.sub('_', route).strip('._') or 'route'}.jsonl"


class BodyStore:
    def __init__(self, directory: Path, routes: list[str] | None = None) -> None:
        self.directory = directory
        self._routes = set(routes or ())
        self._lock = threading.Lock()
        self._files: dict[Path, IO[bytes]] = {}
        self.written = 0
        self.redacted: Counter[str] = Counter()

    def wants(self, route: str) -> bool:
        return not self._routes or route in self._routes

    def record(self, trace: RequestTrace, status: int) -> bool:
        """Store one finished request when it succeeded on a stored route; True when a line was written."""
        served = trace.served
        if status != 200 or trace.cached is not None or served is None or served.outcome != "ok":
            return False
        if (trace.distill is not None and trace.distill.mode == "live") or \
                served.deployment.name.startswith("distill/"):
            return False  # a student's own answer is no teacher answer
        route = trace.requested_model
        if not self.wants(route):
            return False
        found: Counter[str] = Counter()
        body = {**trace.body, "messages": redact_messages(trace.body.get("messages"), found)}
        reply = redact("".join(served.text), found)
        line = {"timestamp": round(trace.started_us / 1e6, 3), "request": body,
                "response": {"model": served.deployment.sent_model, "object": "chat.completion",
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}],
                             "usage": served.usage or {}},
                "metadata": {"route": route, "deployment": served.deployment.name, "request_id": trace.id}}
        data = orjson.dumps(line) + b"\n"
        path = route_file(self.directory, route)
        with self._lock:
            handle = self._files.get(path)
            if handle is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = self._files[path] = path.open("ab", buffering=0)
            handle.write(data)
            self.written += 1
            self.redacted.update(found)
        return True

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()


def build_body_store(settings: Settings, env: Mapping[str, str]) -> BodyStore | None:
    config = settings.distill.store_bodies
    if not config.enabled:
        return None
    directory = Path(config.path).expanduser() if config.path else data_home(settings, env) / "bodies"
    return BodyStore(directory, list(config.routes))
