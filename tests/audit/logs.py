"""Builders for small hand-made logs in each format."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tokenomy.audit.demo import system_prompt

MIGRATION = Path(__file__).parents[2] / "src/tokenomy/ledger/migrations/0001.initial.sql"
SYSTEM = system_prompt()  # ~2,100 tokens: over the 1,024-token prompt-caching minimum


def chat(user: str, model: str = "gpt-4o", system: bool = True, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM}] if system else []
    return {"model": model, "messages": [*messages, {"role": "user", "content": user}], **extra}


def line(body: dict[str, Any] | None, ts: Any = None, prompt: int = 100, completion: int = 10,
         cached: int = 0, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"request": body, **extra}
    if ts is not None:
        obj["timestamp"] = ts
    obj["response"] = {"model": (body or {}).get("model", "gpt-4o"),
                       "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "prompt_tokens_details": {"cached_tokens": cached}}}
    return obj


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_ledger(path: Path, rows: list[tuple[str, int, int, int, int, int | None]]) -> Path:
    """rows: (model, started_us, input_tokens, cached_read_tokens, output_tokens, cost_pusd)."""
    db = sqlite3.connect(path)
    db.executescript(MIGRATION.read_text())
    for i, (model, started, inp, cached, out, pusd) in enumerate(rows):
        db.execute("INSERT INTO requests (id, started_us, ended_us, endpoint, requested_model, served_model, stream, "
                   "status, cache_status, attempts, input_tokens, cached_read_tokens, cache_write_tokens, "
                   "output_tokens, reasoning_tokens, usage_source, cost_pusd, client_disconnected) VALUES "
                   "(?, ?, ?, '/v1/chat/completions', ?, ?, 0, 200, 'miss', 1, ?, ?, 0, ?, 0, 'reported', ?, 0)",
                   (f"r{i}", started, started + 1000, model, model, inp, cached, out, pusd))
    db.commit()
    db.close()
    return path
