"""``distill collect``: one task's logged requests → a deduplicated train/eval set in fine-tuning chat format.

Rows are the task's requests that carry the teacher's answer. A prompt seen several times is kept once, with its
most frequent answer (ties: the first seen); how many prompts had conflicting answers is reported, since it bounds
the agreement any student can reach. The split is by prompt hash (:mod:`tokenomy.distill.examples`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenomy.audit.records import LogRecord
from tokenomy.distill.examples import (
    EVAL,
    TRAIN,
    Example,
    is_eval,
    prompt_messages,
    write_examples,
    write_manifest,
)
from tokenomy.distill.selector import Selector
from tokenomy.distill.tasks import TaskGroup, answer_shape, find_tasks
from tokenomy.errors import DistillError


@dataclass(frozen=True, slots=True)
class Collected:
    directory: Path
    manifest: dict[str, Any]


def resolve_selector(task: str, where: str | None, records: list[LogRecord],
                     price: Callable[[LogRecord], Decimal | None]) -> Selector:
    """``--where`` when given; else the candidate task named ``task`` (as ``distill tasks`` prints it)."""
    if where:
        return Selector.parse(where)
    groups = find_tasks(records, price)
    for group in groups:
        if task in (group.name, str(group.selector)):
            return group.selector
    names = ", ".join(g.name for g in groups[:8]) or "none"
    raise DistillError(f"no task named {task!r} in these logs (candidates: {names}); run 'tokenomy distill tasks' "
                       "or give --where system=HASH|route=R|tag=T")


def collect(records: Iterable[LogRecord], *, task: str, selector: Selector, out: Path,
            price: Callable[[LogRecord], Decimal | None], sources: list[str]) -> Collected:
    group = TaskGroup(selector)
    answers: dict[str, Counter[str]] = {}
    prompts: dict[str, tuple[dict[str, str], ...]] = {}
    for rec in records:
        if not selector.matches(rec):
            continue
        group.add(rec, price(rec))
        messages = prompt_messages((rec.body or {}).get("messages"))
        if rec.output_text is None or not any(m["role"] == "user" for m in messages):
            continue
        example = Example(messages=messages, answer=rec.output_text.strip())
        digest = example.prompt_hash
        prompts.setdefault(digest, messages)
        answers.setdefault(digest, Counter())[example.answer] += 1
    if not prompts:
        raise DistillError(f"task {task!r} ({selector}): no request with the teacher's answer in these logs")
    train: list[Example] = []
    held_out: list[Example] = []
    conflicts = 0
    for digest, messages in prompts.items():
        counts = answers[digest]
        conflicts += len(counts) > 1
        example = Example(messages=messages, answer=counts.most_common(1)[0][0])
        (held_out if is_eval(digest) else train).append(example)
    if not train or not held_out:
        raise DistillError(f"task {task!r}: {len(prompts)} distinct prompt(s) is too few to split into train and "
                           "eval; collect more traffic")
    out.mkdir(parents=True, exist_ok=True)
    write_examples(out / TRAIN, train)
    write_examples(out / EVAL, held_out)
    labels = Counter(e.answer for e in train + held_out)
    shape = answer_shape(labels, len(prompts))
    manifest = {
        "task": task, "where": str(selector), "shape": shape,
        "labels": sorted(labels) if shape == "classification" else None,
        "train": len(train), "eval": len(held_out), "requests": group.requests,
        "duplicates_dropped": group.with_answer - len(prompts), "conflicting_prompts": conflicts,
        "teacher_models": dict(group.models.most_common()),
        "teacher_spend_usd": str(group.spend_usd), "teacher_usd_per_1k": str(
            group.spend_usd * 1000 / max(group.requests - group.unpriced, 1)),
        "requests_per_day": round(group.requests / group.days, 2), "sources": sources,
        "collected_at": int(time.time()),
    }
    write_manifest(out, manifest)
    return Collected(out, manifest)
