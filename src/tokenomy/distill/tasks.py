"""Find candidate tasks in request logs: traffic grouped by system prompt, route or tag.

A *task* is traffic that asks the same thing of the model over and over with different inputs: the same system
prompt (the usual case), the same route (the model name a client asks for, or tokenomy's ``metadata.route``), or
the same ``tag`` (``metadata.tag`` on the log line or in the request). For each group: requests, distinct prompts,
spend, the teacher models, and the shape of the answers:

- ``classification``: a small set of short distinct answers (at most ``MAX_LABELS`` labels, none over
  ``MAX_LABEL_WORDS`` words, and at most half as many labels as distinct prompts) — a head student fits;
- ``free-text`` otherwise — a LoRA student is needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.audit.readers import detect_format, read_log
from tokenomy.audit.records import BadLines, LogRecord
from tokenomy.distill.examples import prompt_hash, prompt_messages
from tokenomy.distill.selector import KINDS, Selector, keys_of
from tokenomy.errors import DistillError

MAX_LABELS = 50
MAX_LABEL_WORDS = 6
_ANSWER_CAP = 2000  # distinct answers counted per group; past that it is free text anyway



def answer_shape(answers: Counter[str], prompts: int) -> str:
    if not answers or len(answers) > MAX_LABELS or len(answers) >= _ANSWER_CAP:
        return "free-text"
    if any(len(a.split()) > MAX_LABEL_WORDS for a in answers):
        return "free-text"
    if prompts >= 4 and len(answers) > prompts / 2:
        return "free-text"
    return "classification"


@dataclass
class TaskGroup:
    selector: Selector
    requests: int = 0
    with_answer: int = 0
    spend_usd: Decimal = Decimal(0)
    unpriced: int = 0
    models: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    prompts: set[str] = field(default_factory=set)
    first_ts: float | None = None
    last_ts: float | None = None
    sample: str = ""

    @property
    def shape(self) -> str:
        return answer_shape(self.answers, len(self.prompts))

    @property
    def name(self) -> str:
        """What ``collect --task`` accepts: the one tag every request carries, else the selector's short form."""
        if self.selector.kind == "tag":
            return self.selector.value
        if len(self.tags) == 1 and next(iter(self.tags.values())) == self.requests:
            return next(iter(self.tags))
        return {"system": "sys-", "route": "route-"}[self.selector.kind] + self.selector.value

    @property
    def days(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 1.0
        return max((self.last_ts - self.first_ts) / 86_400, 1.0)

    def add(self, rec: LogRecord, cost: Decimal | None) -> None:
        self.requests += 1
        self.models[rec.model] += 1
        self.tags.update(keys_of(rec, "tag"))
        if cost is None:
            self.unpriced += 1
        else:
            self.spend_usd += cost
        messages = prompt_messages((rec.body or {}).get("messages"))
        self.prompts.add(prompt_hash(messages))
        if not self.sample:
            users = [m["content"] for m in messages if m["role"] == "user"]
            self.sample = (users[-1] if users else "")[:80]
        if rec.output_text is not None:
            self.with_answer += 1
            answer = rec.output_text.strip()
            if answer in self.answers or len(self.answers) < _ANSWER_CAP:
                self.answers[answer] += 1
        if rec.timestamp is not None:
            self.first_ts = rec.timestamp if self.first_ts is None else min(self.first_ts, rec.timestamp)
            self.last_ts = rec.timestamp if self.last_ts is None else max(self.last_ts, rec.timestamp)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "where": str(self.selector), "requests": self.requests,
                "distinct_prompts": len(self.prompts), "with_answer": self.with_answer,
                "spend_usd": str(self.spend_usd), "requests_per_day": round(self.requests / self.days, 1),
                "shape": self.shape, "labels": len(self.answers) if self.shape == "classification" else None,
                "top_answers": [a for a, _ in self.answers.most_common(5)] if self.shape == "classification"
                else [], "teacher_models": dict(self.models.most_common()), "unpriced": self.unpriced,
                "sample": self.sample}


def read_records(paths: Sequence[Path], bad: BadLines) -> Iterator[LogRecord]:
    """Records with a request body, from logs in any of the audit's formats."""
    for path in paths:
        if not path.is_file():
            raise DistillError(f"{path}: no such file")
        for rec in read_log(path, detect_format(path), bad):
            if rec.body is not None:
                yield rec


def find_tasks(records: Iterable[LogRecord], price: Any, *, kinds: Sequence[str] = KINDS,
               min_requests: int = 2) -> list[TaskGroup]:
    """Groups of at least ``min_requests`` requests, most spend first. ``price(rec)`` → Decimal | None."""
    groups: dict[Selector, TaskGroup] = {}
    for rec in records:
        cost = price(rec)
        for kind in kinds:
            for key in keys_of(rec, kind):
                selector = Selector(kind, key)
                groups.setdefault(selector, TaskGroup(selector)).add(rec, cost)
    found = [g for g in groups.values() if g.requests >= min_requests]
    return sorted(found, key=lambda g: (-g.spend_usd, -g.requests, g.name))
