"""What the batch tests share: input files of chat lines, waiting for a batch to end, reading its result files."""

from __future__ import annotations

import json
import time
from typing import Any

import openai

TERMINAL = ("completed", "failed", "expired", "cancelled")


def chat_lines(n: int, model: str, prefix: str) -> bytes:
    """``n`` chat lines for ``model``: custom ids ``<prefix>-<i>``, each asking ``<prefix> line <i>``."""
    rows = ({"custom_id": f"{prefix}-{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": model, "messages": [{"role": "user", "content": f"{prefix} line {i}"}]}}
            for i in range(n))
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def wait_for(client: openai.OpenAI, batch_id: str, timeout_s: float = 30, poll_s: float = 0.05) -> Any:
    """The batch once it has ended; AssertionError naming its state when it has not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        time.sleep(poll_s)
    raise AssertionError(f"batch {batch_id} still {batch.status}: {batch.request_counts}")


def result_rows(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """The lines of an output or error file (none when the batch has no such file)."""
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line]
