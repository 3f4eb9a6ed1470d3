"""Which requests the exact cache may answer, and the key it answers them under.

The key is a SHA-256 of the canonical request: every field that can change the output (model, messages, tools,
sampling parameters, response format, …) with JSON keys sorted; not ``stream``/``stream_options`` (a streamed and a
plain request share answers), not ``user``/``metadata``/``store``/``service_tier`` (bookkeeping). It is namespaced
per tenant so one team never sees another's answers unless the config shares a namespace.

By default only deterministic requests are cached: ``temperature: 0``, or a fixed ``seed``. A client opts a request
in with ``x-tokenomy-cache: on`` (or the config's ``mode: all``), and out with ``Cache-Control: no-store`` (neither
read nor written) or ``Cache-Control: no-cache`` (not read, the fresh answer is written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store", "service_tier"})


@dataclass(frozen=True, slots=True)
class CacheDecision:
    key: str
    read: bool
    write: bool


def request_key(body: Mapping[str, Any], namespace: str) -> str:
    canonical = {k: v for k, v in body.items() if k not in _NOT_IN_KEY}
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{namespace}:{digest}"


def deterministic(body: Mapping[str, Any]) -> bool:
    return body.get("temperature") == 0 or body.get("seed") is not None


def decide(body: Mapping[str, Any], headers: Mapping[str, str], *, namespace: str, mode: str) -> CacheDecision | None:
    """None when the exact cache must stay out of this request."""
    if mode == "off":
        return None
    control = headers.get("cache-control", "").lower()
    opted_in = headers.get("x-tokenomy-cache", "").lower() == "on"
    if "no-store" in control or headers.get("x-tokenomy-cache", "").lower() == "off":
        return None
    if not (mode == "all" or opted_in or deterministic(body)):
        return None
    return CacheDecision(key=request_key(body, namespace), read="no-cache" not in control, write=True)
