"""Files and batches as tokenomy keeps them, and as OpenAI's API shows them (``to_openai``). Plain data, no I/O.

A batch moves through an explicit state machine (OpenAI's): ``validating → in_progress → finalizing → completed``,
or ``validating → failed``, ``in_progress → expired`` when the completion window ends first, and ``… → cancelling
→ cancelled``. Terminal states never change again.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


class LineState(StrEnum):
    PENDING = "pending"
    DONE = "done"  # in the output file
    FAILED = "failed"  # in the error file, with the upstream's (or our) error response
    EXPIRED = "expired"  # in the error file: the completion window ended before it ran
    CANCELLED = "cancelled"  # in the error file: the batch was cancelled before it ran


# Where a batch's lines run: tokenomy's own workers (routing, caching, the configured tiers) or the provider's own
# batch API (the batch discount; one model per batch).
VIA = ("gateway", "provider")
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
TIMESTAMPS = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
              "cancelled_at")


def new_id(prefix: str, sep: str = "_") -> str:
    """A fresh id that sorts by creation time (16 hex digits of nanoseconds, then 8 random)."""
    return f"{prefix}{sep}{time.time_ns():016x}{os.urandom(4).hex()}"


def derived_id(prefix: str, *parts: object) -> str:
    """A stable id from its parts: re-running the same step (after a crash) names the same thing."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


def output_file_id(batch_id: str, kind: str) -> str:
    """The id of a batch's output (``kind`` = output) or error file: finalizing twice writes the same file."""
    return "file-" + derived_id("x", batch_id, kind)[2:]


def line_request_id(batch_id: str, line_no: int) -> str:
    """The ledger request id of a batch line (and its ``response.request_id``): the same on every execution."""
    return derived_id("req", batch_id, line_no)


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    purpose: str
    filename: str
    bytes: int
    lines: int
    created_at: int
    status: str = "processed"
    expires_at: int | None = None
    key_id: str | None = None

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": self.status,
                "expires_at": self.expires_at, "status_details": None}


@dataclass(frozen=True, slots=True)
class LineCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class LineUsage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> LineUsage:
        """OpenAI-shaped usage (chat or embeddings) as a line's token counts; anything unreadable counts 0."""
        if not isinstance(usage, dict):
            return cls()

        def number(value: Any) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

        prompt = usage.get("prompt_tokens_details")
        completion = usage.get("completion_tokens_details")
        return cls(input_tokens=number(usage.get("prompt_tokens")),
                   cached_tokens=number(prompt.get("cached_tokens")) if isinstance(prompt, dict) else 0,
                   output_tokens=number(usage.get("completion_tokens")),
                   reasoning_tokens=number(completion.get("reasoning_tokens")) if isinstance(completion, dict) else 0)

    def __add__(self, other: LineUsage) -> LineUsage:
        return LineUsage(self.input_tokens + other.input_tokens, self.cached_tokens + other.cached_tokens,
                         self.output_tokens + other.output_tokens, self.reasoning_tokens + other.reasoning_tokens)

    def to_openai(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "input_tokens_details": {"cached_tokens": self.cached_tokens},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                "total_tokens": self.input_tokens + self.output_tokens}


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    via: str
    status: BatchStatus
    created_at: int
    expires_at: int
    max_concurrency: int
    metadata: dict[str, str] | None = None
    errors: list[dict[str, Any]] | None = None
    model: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    key_id: str | None = None
    remote: dict[str, Any] | None = None  # the provider's ids and state, for pass-through batches
    times: dict[str, int | None] = field(default_factory=dict)  # in_progress_at, … (TIMESTAMPS)

    def to_openai(self, counts: LineCounts, usage: LineUsage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "object": "batch", "endpoint": self.endpoint, "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": str(self.status), "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "expires_at": self.expires_at,
            "request_counts": {"total": counts.total, "completed": counts.completed, "failed": counts.failed},
            "usage": usage.to_openai(), "metadata": self.metadata,
        }
        body.update({name: self.times.get(name) for name in TIMESTAMPS})
        return body
