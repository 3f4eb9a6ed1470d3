"""The data directory ``distill collect`` writes and every later step reads.

```
train.jsonl     training examples, OpenAI fine-tuning chat format: {"messages": [system?, ..., user, assistant]}
eval.jsonl      held-out examples (20 % of distinct prompts, chosen by prompt hash; never trained on)
manifest.json   the task: name, selector, shape, labels, teacher model(s), volume, teacher cost, sources
```

A prompt's identity is the SHA-256 of its messages (role and text, in order) without the teacher's answer; the
split is ``int(hash[:8], 16) % 5 == 0`` → eval, so one prompt never lands on both sides and the split does not move
when more traffic is collected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tokenomy.errors import DistillError

TRAIN, EVAL, MANIFEST = "train.jsonl", "eval.jsonl", "manifest.json"
FORMAT = "tokenomy-distill-data/1"
EVAL_MODULUS = 5  # 1 in 5 prompt hashes → the eval split (20 %)


@dataclass(frozen=True, slots=True)
class Example:
    """One prompt (``messages``, without the answer) and the teacher's answer to it."""

    messages: tuple[Mapping[str, str], ...]
    answer: str

    @property
    def prompt_hash(self) -> str:
        return prompt_hash(self.messages)

    @property
    def system(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] in ("system", "developer"))

    @property
    def user(self) -> str:
        """The last user turn (what varies between requests of one task)."""
        users = [m["content"] for m in self.messages if m["role"] == "user"]
        return users[-1] if users else ""

    def as_chat(self) -> dict[str, Any]:
        return {"messages": [*map(dict, self.messages), {"role": "assistant", "content": self.answer}]}


def message_text(content: Any) -> str:
    """A message's text: the string, or its text parts joined; '' for anything else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_messages(raw: Any) -> tuple[dict[str, str], ...]:
    """A request's ``messages`` as plain (role, text) pairs; tool and non-text parts are dropped."""
    out = []
    for m in raw if isinstance(raw, list) else ():
        if isinstance(m, dict) and m.get("role") in ("system", "developer", "user", "assistant"):
            out.append({"role": str(m["role"]), "content": message_text(m.get("content"))})
    return tuple(out)


def prompt_hash(messages: Iterable[Mapping[str, str]]) -> str:
    canonical = orjson.dumps([[m["role"], m["content"]] for m in messages])
    return hashlib.sha256(canonical).hexdigest()


def system_hash(system: str) -> str:
    """The short id of a system prompt, as ``distill tasks`` prints it and ``--where system=HASH`` takes it."""
    return hashlib.sha256(system.encode("utf-8")).hexdigest()[:12]


def is_eval(digest: str) -> bool:
    return int(digest[:8], 16) % EVAL_MODULUS == 0


def write_examples(path: Path, examples: Sequence[Example]) -> None:
    with path.open("wb") as f:
        for example in examples:
            f.write(orjson.dumps(example.as_chat()) + b"\n")


def read_examples(path: Path) -> list[Example]:
    """Examples from a fine-tuning chat JSONL file: the last message must be the assistant's answer."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise DistillError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return list(_parse(path, lines))


def _parse(path: Path, lines: list[bytes]) -> Iterator[Example]:
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DistillError(f"{path}:{number}: invalid JSON ({exc})") from exc
        messages = prompt_messages(obj.get("messages") if isinstance(obj, dict) else None)
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            raise DistillError(f"{path}:{number}: expected {{\"messages\": [..., user, assistant]}}")
        yield Example(messages=messages[:-1], answer=messages[-1]["content"])


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps({"format": FORMAT, **manifest}, indent=2) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DistillError(f"{directory}: no {MANIFEST}; make the data directory with 'tokenomy distill "
                           "collect'") from exc
    except (OSError, ValueError) as exc:
        raise DistillError(f"cannot read {path}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise DistillError(f"{path}: not a tokenomy distillation data manifest (format {manifest.get('format')!r})")
    return manifest


def load_split(directory: Path, name: str) -> list[Example]:
    read_manifest(directory)
    examples = read_examples(directory / name)
    if not examples:
        raise DistillError(f"{directory / name}: no examples")
    return examples
