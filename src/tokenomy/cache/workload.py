"""Chat workloads for ``tokenomy cache simulate``: read an OpenAI-format request log, or build the demo (multi-turn
conversations sharing one long system prompt)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tokenomy.errors import InvalidRequestError

_POLICY = ("Refunds are issued within 30 days of purchase when the item is unused and in its original packaging. "
           "Shipping costs are refunded only when the item arrived damaged or was not what was ordered. ")


def read_log(path: Path) -> Iterator[tuple[float, dict[str, Any]]]:
    """``(timestamp, chat request)`` per line of an OpenAI-format log (``{"timestamp", "request", ...}``)."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield _when(row["timestamp"]), dict(row["request"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InvalidRequestError(
                    f"{path}:{number}: not a log line with 'timestamp' and 'request' ({exc})") from exc


def _when(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def demo(conversations: int = 20, turns: int = 6, seed: int = 7) -> list[tuple[float, dict[str, Any]]]:
    """Support chats: a shared ~1,500-token system prompt, ``turns`` user turns each, 20-90 s apart; conversations
    start spread over an hour."""
    rng = random.Random(seed)
    system = "You are the support assistant of a web shop. Policy:\n" + _POLICY * 40
    start = 1_764_000_000.0
    out: list[tuple[float, dict[str, Any]]] = []
    for c in range(conversations):
        at = start + rng.uniform(0, 3600)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for t in range(turns):
            messages.append({"role": "user", "content": f"Conversation {c}, question {t}: can I return item "
                                                          f"{rng.randint(100, 999)} bought {rng.randint(1, 60)} days "
                                                          f"ago? It was opened once."})
            out.append((at, {"model": "demo", "messages": list(messages)}))
            messages.append({"role": "assistant", "content": "Thanks for asking. " * rng.randint(10, 40)})
            at += rng.uniform(20, 90)
    return out
