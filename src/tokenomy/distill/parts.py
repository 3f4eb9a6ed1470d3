"""Split a structured prompt into its inputs, so a two-input judgement is seen as two inputs.

Traffic that compares things ("Premise: … / Hypothesis: …", "Question: … / Answer: …", a JSON object, tagged
blocks) loses the comparison when the whole prompt is embedded as one sentence: the vector says what the texts are
about, not whether they agree. The head student embeds each input separately and adds pair features
(:mod:`tokenomy.distill.features`). Recognised, in order:

1. a JSON object with at least two string values (the values, in key order);
2. at least two ``<tag>…</tag>`` blocks;
3. at least two ``Key: value`` lines (a key of at most four words at a line start; a value runs on to the next key).

A prompt that matches none is one input. :func:`fit_schema` decides from the training prompts whether a task is
structured at all (most prompts split into the same number of parts).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

_TAG = re.compile(r"<([A-Za-z][\w-]{0,30})>(.*?)</\1>", re.S)
_KEY_LINE = re.compile(r"^\s*([A-Za-z][\w'()#-]*(?: [\w'()#-]+){0,3})\s*[:：]\s*(.*)$")
MAX_PARTS = 4
STRUCTURED_SHARE = 0.8


def split_parts(text: str) -> list[str]:
    """The inputs of one prompt (one element when it is not structured)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            values = [v for v in obj.values() if isinstance(v, str) and v.strip()]
            if len(values) >= 2:
                return values
    tagged = [body.strip() for _, body in _TAG.findall(text) if body.strip()]
    if len(tagged) >= 2:
        return tagged
    fields: list[str] = []
    preamble = True
    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match and match.group(2).strip():
            fields.append(match.group(2).strip())
            preamble = False
        elif not preamble and fields:
            fields[-1] = f"{fields[-1]}\n{line}".strip()
    return fields if len(fields) >= 2 else [text]


def fit_schema(texts: Sequence[str]) -> int:
    """How many parts the task's prompts have (1: not structured; at most ``MAX_PARTS``)."""
    if not texts:
        return 1
    counts = Counter(min(len(split_parts(t)), MAX_PARTS) for t in texts)
    parts, seen = counts.most_common(1)[0]
    return parts if parts >= 2 and seen >= STRUCTURED_SHARE * len(texts) else 1


def parts_for(text: str, n: int) -> list[str]:
    """Exactly ``n`` parts of ``text``: its own parts, padded with the whole text when it has fewer."""
    found = split_parts(text) if n > 1 else [text]
    found = found[:n]
    return found + [text] * (n - len(found))
