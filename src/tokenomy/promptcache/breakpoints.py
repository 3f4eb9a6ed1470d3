"""Anthropic prompt caching without the client doing anything: ``cache_control`` breakpoints on the longest stable
prefixes of a Messages request.

Candidates, in prompt order: the end of the tools, the end of the system prompt, and the end of the conversation
before its last turn. A breakpoint is set only where the prefix up to it reaches the model's minimum cacheable
length (4,096 tokens for Opus 4.5+ and Haiku 4.5, 2,048 for Haiku 3.x, 1,024 otherwise; counted offline, an
estimate for Claude's tokenizer), at most 4 per request (Anthropic's limit). A request that already carries any
``cache_control`` is left exactly as the client wrote it.

TTL, per breakpoint: the default 5-minute cache, unless the prefix up to it was last seen between 5 minutes and an
hour ago, in which case the 1-hour cache (2× write price, but a 5-minute entry would have expired before the reuse);
1-hour breakpoints only before 5-minute ones, as Anthropic requires.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

MAX_BREAKPOINTS = 4
_FIVE_MIN, _ONE_HOUR = 300.0, 3600.0


class TextCounter(Protocol):
    def count_text(self, text: str, model: str) -> int: ...


def minimum_cacheable(model: str) -> int:
    name = model.lower()
    if re.search(r"opus-4-[5-9]|opus-[5-9]|haiku-4-5|haiku-[5-9]", name):
        return 4096
    if "haiku-3" in name:
        return 2048
    return 1024


class BreakpointPlanner:
    def __init__(self, counter: TextCounter, clock: Callable[[], float] = time.monotonic,
                 remember: int = 10_000) -> None:
        self._counter = counter
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._remember = remember

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """``request`` (a translated Messages body) with breakpoints added; the input is not modified."""
        if _has_cache_control(request):
            return request
        model = str(request.get("model", ""))
        floor = minimum_cacheable(model)
        out = {**request}
        total = 0
        marks: list[tuple[str, int]] = []
        if out.get("tools"):
            total += self._count(json.dumps(out["tools"]), model)
            marks.append(("tools", total))
        if out.get("system"):
            total += self._count(_text(out["system"]), model)
            marks.append(("system", total))
        messages = list(out.get("messages") or ())
        if len(messages) >= 2:
            total += sum(self._count(_text(m.get("content")), model) for m in messages[:-1])
            marks.append(("history", total))
        chosen = [where for where, size in marks if size >= floor][:MAX_BREAKPOINTS]
        if not chosen:
            return request
        one_hour = True  # Anthropic wants 1-hour breakpoints before 5-minute ones
        for where in chosen:
            one_hour = self._long_gap(out, where) and one_hour
            _mark(out, where, {"type": "ephemeral", **({"ttl": "1h"} if one_hour else {})})
        return out

    def _count(self, text: str, model: str) -> int:
        return self._counter.count_text(text, model) if text else 0

    def _long_gap(self, request: dict[str, Any], where: str) -> bool:
        """Was the prefix up to ``where`` last seen between 5 minutes and an hour ago? (Remembers the last
        ``remember`` prefixes.)"""
        parts: dict[str, Any] = {"tools": request.get("tools")}
        if where in ("system", "history"):
            parts["system"] = _text(request.get("system"))
        if where == "history":
            parts["messages"] = [_text(m.get("content")) for m in (request.get("messages") or [])[:-1]]
        key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        now = self._clock()
        previous = self._seen.pop(key, None)
        self._seen[key] = now
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return previous is not None and _FIVE_MIN < now - previous <= _ONE_HOUR


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v) for v in value)
    return False


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) if isinstance(b, dict) else "" for b in content)
    return ""


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(b) for b in content or ()]


def _mark(request: dict[str, Any], where: str, control: dict[str, str]) -> None:
    if where == "tools":
        tools = [dict(t) for t in request["tools"]]
        tools[-1]["cache_control"] = control
        request["tools"] = tools
    elif where == "system":
        blocks = _blocks(request["system"])
        blocks[-1]["cache_control"] = control
        request["system"] = blocks
    else:
        messages = [dict(m) for m in request["messages"]]
        target = messages[-2]
        blocks = _blocks(target.get("content"))
        if blocks:
            blocks[-1]["cache_control"] = control
            target["content"] = blocks
        request["messages"] = messages
