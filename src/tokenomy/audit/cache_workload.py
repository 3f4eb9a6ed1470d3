"""Chat workloads for ``tokenomy cache simulate``: read an OpenAI-format request log, or build the demo (multi-turn
conversations sharing one long system prompt)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tokenomy.errors import InvalidRequestError
from tokenomy.jsonl import json_objects

_POLICY = ("Refunds are issued within 30 days of purchase when the item is unused and in its original packaging. "
           "Shipping costs are refunded only when the item arrived damaged or was not what was ordered. ")


def read_log(path: Path) -> Iterator[tuple[float, dict[str, Any]]]:
    """``(timestamp, chat request)`` per line of an OpenAI-format log (``{"timestamp", "request", ...}``)."""
    for where, row in json_objects(path, InvalidRequestError, "log"):
        try:
            yield _when(row["timestamp"]), dict(row["request"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequestError(f"{where}: not a log line with 'timestamp' and 'request' ({exc})") from exc


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
