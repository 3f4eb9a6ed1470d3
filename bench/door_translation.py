"""What the Messages and Responses doors add per request in CPU, measured in-process (no HTTP, no upstream): the
pure translations a door runs around the one chat path, against the chat door's own parsing of the same question.

    .venv/bin/python bench/door_translation.py [--n 20000]

Per door, best of 5 runs of ``--n`` requests: parse the JSON body, translate it onto chat (Messages, Responses),
validate the chat body (every door), render the answer back from a chat completion (Messages' message, Responses'
response object; the chat door serialises the completion as is), serialise it. A small body (the benchmark's
question) and an agent-sized one (a long system prompt, 15 tools, a tool round trip).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import orjson

from tokenomy.wire.messages.answer import to_message
from tokenomy.wire.messages.request import to_chat as messages_to_chat
from tokenomy.wire.responses.answer import completed
from tokenomy.wire.responses.request import input_items, validate
from tokenomy.wire.responses.request import to_chat as responses_to_chat
from tokenomy.wire.validation import validate_chat

QUESTION = "benchmark ping with a few words"
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "echo",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                                              "content": "echo: " + QUESTION}}],
              "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}


def _tools(n: int) -> list[dict[str, Any]]:
    return [{"name": f"tool_{i}", "description": "Does one thing in the workspace. " * 6,
             "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}} for i in range(n)]


def bodies(size: str) -> dict[str, dict[str, Any]]:
    """The same request in each door's shape."""
    system = "You are a coding agent. " * (400 if size == "agent" else 1)
    tools = _tools(15 if size == "agent" else 0)
    turns: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    chat: dict[str, Any] = {"model": "echo", "max_tokens": 64,
                            "messages": [{"role": "system", "content": system}, *turns]}
    messages: dict[str, Any] = {"model": "echo", "max_tokens": 64, "system": system, "messages": turns}
    responses: dict[str, Any] = {"model": "echo", "max_output_tokens": 64, "instructions": system, "input": QUESTION}
    if tools:
        chat["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                           "parameters": t["input_schema"]}} for t in tools]
        messages["tools"] = tools
        responses["tools"] = [{"type": "function", "name": t["name"], "description": t["description"],
                               "parameters": t["input_schema"]} for t in tools]
    return {"chat": chat, "messages": messages, "responses": responses}


def _chat(raw: bytes) -> bytes:
    validate_chat(orjson.loads(raw))
    return orjson.dumps(COMPLETION)


def _messages(raw: bytes) -> bytes:
    validate_chat(messages_to_chat(orjson.loads(raw)))
    return orjson.dumps(to_message(COMPLETION, "req_0123456789abcdef01234567"))


def _responses(raw: bytes) -> bytes:
    body = orjson.loads(raw)
    validate(body)
    validate_chat(responses_to_chat(body, input_items(body, "0123456789abcdef01234567")))
    return orjson.dumps(completed(body, "req_0123456789abcdef01234567", COMPLETION))


DOORS: dict[str, Callable[[bytes], bytes]] = {"chat": _chat, "messages": _messages, "responses": _responses}


def per_request_us(door: str, raw: bytes, n: int) -> float:
    run = DOORS[door]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            run(raw)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    print("| body | door | µs per request | more than the chat door's, µs |")
    print("|---|---|---|---|")
    for size in ("small", "agent"):
        raws = {door: orjson.dumps(copy.deepcopy(body)) for door, body in bodies(size).items()}
        n = args.n if size == "small" else max(1, args.n // 10)
        found = {door: per_request_us(door, raws[door], n) for door in DOORS}
        for door, us in found.items():
            print(f"| {size} | {door} | {us:.1f} | {us - found['chat']:+.1f} |")


if __name__ == "__main__":
    main()
