"""The stable prefix of a chat request, and what the gateway does with it so provider-side prompt caches hit.

The prefix is everything before the last user turn: tools, then the system/developer messages, then the earlier
conversation. Requests that share it can reuse a provider's cached prompt prefix (OpenAI, Anthropic) or a
self-hosted server's KV prefix cache (vLLM, SGLang, llama.cpp) — if they reach the same cache. Two uses here:
``prompt_cache_key`` for OpenAI (requests with the same key are routed to the same cache machine), and sticky
routing of a prefix to one replica among several self-hosted deployments (rendezvous hashing, so adding or removing
a replica moves only its own share of prefixes), with an escape to the next replica when the chosen one is busy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

SELF_HOSTED = frozenset({"vllm", "sglang", "llamacpp", "ollama", "openai_compatible"})


def prefix_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the request's stable prefix: tools and every message before the last user message."""
    messages = list(body.get("messages") or ())
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
                    default=len(messages))
    prefix = {"model": body.get("model"), "tools": body.get("tools"), "messages": messages[:last_user]}
    return hashlib.sha256(orjson.dumps(prefix, option=orjson.OPT_SORT_KEYS)).hexdigest()


def rendezvous_order(key: str, names: Sequence[str]) -> list[str]:
    """``names`` ordered by highest-random-weight hashing of ``key``: stable per key, evenly spread over keys."""
    def weight(name: str) -> bytes:
        return hashlib.blake2b(f"{key}|{name}".encode(), digest_size=8).digest()

    return sorted(names, key=weight, reverse=True)
