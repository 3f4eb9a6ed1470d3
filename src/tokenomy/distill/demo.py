"""``tokenomy distill demo-log``: a week of logged frontier traffic made from real, licensed text
(:mod:`tokenomy.distill.corpora`), in the audit's OpenAI JSONL format.

What is real and what is not: every prompt's input is real text (chatterbot-corpus questions and replies, GPQA and
GSM8K questions). The "teacher's answers" are the corpora's own labels and reference solutions, standing in for a
frontier model's answers (no frontier model can be called here); the log says ``gpt-4o`` answered them, and usage
is counted with the offline tokeniser, so spend is what gpt-4o would have charged for those tokens.

Each prompt is asked 1–3 times (repeats are how real traffic looks, and collect must deduplicate them), at times
spread over seven days. The ``reply-check`` rows carry ``metadata.tag``; the other tasks are found by their system
prompt alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tokenomy.distill.corpora import TASKS, TaskRow

START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 7
TEACHER = "gpt-4o"
DEFAULT_TASKS = ("topic", "reply-check", "same-topic", "science-domain", "math")
TAGGED = ("reply-check",)


def demo_lines(tasks: Sequence[str] = DEFAULT_TASKS, *, seed: int = 2026, limit: int | None = None,
               model: str = TEACHER) -> Iterator[dict[str, Any]]:
    from tokenomy.tokens.counter import TokenCounter

    rng = random.Random(seed)
    counter = TokenCounter()
    events: list[tuple[float, str, TaskRow]] = []
    for name in tasks:
        rows = TASKS[name]()
        if limit is not None:
            rows = rng.sample(rows, min(limit, len(rows)))
        for row in rows:
            for _ in range(rng.choice((1, 1, 2, 3))):
                events.append((rng.uniform(0, DAYS * 86_400), name, row))
    events.sort(key=lambda e: e[0])
    for i, (offset, name, row) in enumerate(events):
        at = START + timedelta(seconds=offset)
        messages = [{"role": "system", "content": row.system}, {"role": "user", "content": row.user}]
        prompt = counter.count_messages(messages, model)
        completion = counter.count_text(row.answer, model)
        line: dict[str, Any] = {
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "request": {"model": model, "messages": messages, "temperature": 0},
            "response": {"id": f"chatcmpl-demo{i:06d}", "object": "chat.completion", "created": int(at.timestamp()),
                         "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                      "message": {"role": "assistant", "content": row.answer}}],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                   "total_tokens": prompt + completion}},
        }
        if name in TAGGED:
            line["metadata"] = {"tag": name}
        yield line


def write_demo_log(path: Path, tasks: Sequence[str] = DEFAULT_TASKS, *, limit: int | None = None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as f:
        for line in demo_lines(tasks, limit=limit):
            f.write(orjson.dumps(line) + b"\n")
            count += 1
    return count
