"""``tokenomy audit --demo``: a week of a support-and-analytics assistant's traffic, generated deterministically
from the prompts in ``audit/data`` (licences in its README) and written as OpenAI-format JSONL.

The shape: diurnal arrivals (the planner's default curve) over 7 days with quieter weekends; a long shared system
prompt (a product catalogue, ~1,500 tokens) on most requests; exact repeats within a day; paraphrased questions; a
long tail of short support questions; GSM8K-style maths and coding/reasoning tasks; some streamed, some tagged as
batch work; and two corrupt lines, as real logs have. Usage is counted with the offline tokeniser.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tokenomy.plan.workload import DIURNAL
from tokenomy.tokens.counter import TokenCounter

DATA = Path(__file__).with_name("data") / "demo_prompts.jsonl"
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 7
PER_DAY = (620, 650, 640, 660, 600, 260, 220)
MODELS = (("gpt-4.1", 0.6), ("gpt-4o", 0.3), ("gpt-4.1-mini", 0.1))
SIMPLE = (
    "How do I reset my password?", "What are your opening hours?", "Can I change my delivery address?",
    "Where is my order?", "Do you ship to Canada?", "How do I cancel my subscription?",
    "What is your returns policy?", "Is the Router X1 compatible with fibre?", "How do I update the firmware?",
    "Can I pay with PayPal?", "How long does the warranty last?", "What does the blinking orange light mean?",
    "How do I contact a human?", "Can I get an invoice for my purchase?", "Is there a student discount?",
    "How do I pair the remote?", "What colours does the speaker come in?", "Why was my card declined?",
    "How do I delete my account?", "Do you have a store in Berlin?", "Translate 'thank you' into French.",
    "Summarise your privacy policy in one sentence.", "What is a mesh network?", "Which plan is best for gaming?",
)
_PRODUCTS = ("Router", "Mesh Node", "Speaker", "Camera", "Doorbell", "Thermostat", "Plug", "Hub")


def system_prompt() -> str:
    lines = ["You are the customer assistant of Acme Home Electronics. Answer briefly and politely, in the "
             "customer's language. Never invent order details; ask for the order number. Escalate legal threats, "
             "safety issues and refunds above $500 to a human agent. Use the catalogue below for prices and "
             "warranty terms, and say when a product is not in it.", "", "Catalogue:"]
    for i in range(48):
        name = f"{_PRODUCTS[i % len(_PRODUCTS)]} {chr(65 + i // 8)}{i % 8 + 1}"
        lines.append(f"- SKU AC-{1000 + i * 7}: Acme {name}; price ${49 + (i * 37) % 400}; warranty "
                     f"{1 + i % 3} years; ships in {1 + i % 5} working days; returns within {14 + (i % 3) * 8} "
                     "days if unused and in the original packaging.")
    return "\n".join(lines)


def _prompts() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"maths": [], "task": [], "paraphrase": []}
    with DATA.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out[row["kind"]].append(row)
    return out


def _arrivals(rng: random.Random) -> list[datetime]:
    times: list[datetime] = []
    for day, n in enumerate(PER_DAY[:DAYS]):
        hours = rng.choices(range(24), weights=DIURNAL, k=n)
        times += [START + timedelta(days=day, hours=h, seconds=rng.uniform(0, 3600)) for h in hours]
    return sorted(times)


def _user_text(rng: random.Random, prompts: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.35:
        text = rng.choice(SIMPLE)
        return "simple", text if rng.random() < 0.5 else f"{text} My order is AC-{rng.randint(10_000, 99_999)}."
    if roll < 0.45:
        pair = rng.choice(prompts["paraphrase"])
        return "simple", str(pair["prompt"] if rng.random() < 0.5 else pair["paraphrase"])
    kind = "maths" if roll < 0.7 else "task"
    return kind, str(rng.choice(prompts[kind])["prompt"])


def demo_lines(seed: int = 7) -> Iterator[str]:
    """The demo log, one JSON line at a time (plus two corrupt lines)."""
    rng, counter, prompts, system = random.Random(seed), TokenCounter(), _prompts(), system_prompt()
    recent: list[tuple[datetime, dict[str, Any], str]] = []
    counted: dict[tuple[str, bool, str], int] = {}
    out_range = {"simple": (30, 160), "maths": (120, 320), "task": (200, 700)}
    for number, at in enumerate(_arrivals(rng)):
        if number in (411, 2900):
            yield '{"timestamp": "2026-03-02T09:14:02Z", "request": {"model": "gpt-4.1", "messa'
        recent = [r for r in recent if at - r[0] < timedelta(hours=20)][-400:]
        if recent and rng.random() < 0.16:
            _, body, kind = rng.choice(recent)
        else:
            kind, text = _user_text(rng, prompts)
            model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
            messages = ([{"role": "system", "content": system}] if rng.random() < 0.85 else [])
            body = {"model": model, "messages": [*messages, {"role": "user", "content": text}],
                    "temperature": 0 if rng.random() < 0.5 else 0.7}
            recent.append((at, body, kind))
        body = {**body, "stream": rng.random() < 0.45}
        if kind == "task" and not body["stream"] and rng.random() < 0.3:
            body["metadata"] = {"batch": "true"}
        key = (body["model"], len(body["messages"]) > 1, body["messages"][-1]["content"])
        if key not in counted:
            counted[key] = counter.count_messages(body["messages"], body["model"])
        usage = {"prompt_tokens": counted[key], "completion_tokens": rng.randint(*out_range[kind])}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        yield json.dumps({"timestamp": at.isoformat().replace("+00:00", "Z"), "request": body,
                          "response": {"model": body["model"], "usage": usage}})


def write_demo(path: Path, seed: int = 7) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for line in demo_lines(seed):
            f.write(line + "\n")
    return path
