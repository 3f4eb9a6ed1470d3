"""What the router sees of a prompt: a MiniLM sentence embedding of a window of it, a few cheap text statistics,
hashed word and word-pair counts (:mod:`tokenomy.routing.words`), and its group (subject or category) when the
data has one.

The embedding covers the prompt's first ``head_chars`` and last ``tail_chars`` characters (few-shot and
long-context prompts put the question last); the window also bounds the decision latency. Text statistics are
standardised on the training prompts and clipped to the range seen there, so a prompt unlike every training
prompt (a 40-line prompt for a router trained on one-line questions) cannot push a linear learner far outside
what it was fitted on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"\w+")
_CODE = re.compile(r"```|\bdef |\breturn\b|[{};]|=>|\bfunction\b|\bclass ")
_MATH = re.compile(r"[=+*/^<>]|\\frac|\\sqrt|\$")
_OPTION = re.compile(r"(?m)^\s*[A-D][.)]\s")

TEXT_FEATURES = ("log_chars", "log_words", "log_lines", "numbers", "decimals", "math_marks", "code_marks",
                 "questions", "options", "upper_share", "non_ascii_share", "mean_word_len")


@dataclass(frozen=True)
class FeatureConfig:
    head_chars: int = 128  # 128 + 128 characters (~64 word-pieces): see docs/routing.md, decision latency
    tail_chars: int = 128
    text_features: tuple[str, ...] = TEXT_FEATURES
    groups: tuple[str, ...] = ()
    text_mean: tuple[float, ...] = ()
    text_std: tuple[float, ...] = ()
    text_low: tuple[float, ...] = ()  # standardised range on the training prompts (clip bounds)
    text_high: tuple[float, ...] = ()
    embedder: str = "all-minilm-l6-v2"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("text_features", "groups", "text_mean", "text_std", "text_low", "text_high"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def window(self, prompt: str) -> str:
        """The part of ``prompt`` that is embedded."""
        if len(prompt) <= self.head_chars + self.tail_chars:
            return prompt
        return prompt[: self.head_chars] + " … " + prompt[-self.tail_chars :] if self.tail_chars else \
            prompt[: self.head_chars]


def text_statistics(prompt: str) -> list[float]:
    """The raw values of :data:`TEXT_FEATURES`, in order."""
    words = _WORD.findall(prompt)
    numbers = _NUMBER.findall(prompt)
    chars = max(len(prompt), 1)
    return [
        math.log1p(len(prompt)),
        math.log1p(len(words)),
        math.log1p(prompt.count("\n")),
        math.log1p(len(numbers)),
        math.log1p(sum(1 for n in numbers if "." in n or "," in n)),
        math.log1p(len(_MATH.findall(prompt))),
        math.log1p(len(_CODE.findall(prompt))),
        math.log1p(prompt.count("?")),
        math.log1p(len(_OPTION.findall(prompt))),
        sum(map(str.isupper, prompt)) / chars,
        (len(prompt) - len(prompt.encode("ascii", "ignore"))) / chars,
        sum(map(len, words)) / max(len(words), 1) / 10.0,
    ]


def fit_config(prompts: Sequence[str], groups: Sequence[str | None], base: FeatureConfig) -> FeatureConfig:
    """``base`` with the text-statistic scaling and the group vocabulary learned from training prompts."""
    import numpy as np

    stats = np.array([text_statistics(p) for p in prompts], dtype=np.float64)
    vocabulary = tuple(sorted({g for g in groups if g}))
    mean, std = stats.mean(axis=0), stats.std(axis=0) + 1e-6
    z = (stats - mean) / std
    return FeatureConfig(head_chars=base.head_chars, tail_chars=base.tail_chars, text_features=base.text_features,
                         groups=vocabulary, text_mean=tuple(float(v) for v in mean),
                         text_std=tuple(float(v) for v in std), text_low=tuple(float(v) for v in z.min(axis=0)),
                         text_high=tuple(float(v) for v in z.max(axis=0)), embedder=base.embedder)


@dataclass(frozen=True)
class Features:
    """``embedding``: (n, d) unit rows; ``text``: (n, t) standardised and clipped; ``group``: (n,) index into the
    config's groups, -1 for none or unknown; ``words``: (n, BUCKETS) sparse term counts, or None when a caller
    has no prompts (the cascade's answer-only design)."""

    embedding: np.ndarray
    text: np.ndarray
    group: np.ndarray
    words: Any = None

    def take(self, rows: np.ndarray) -> Features:
        words = None if self.words is None else self.words[rows]
        return Features(self.embedding[rows], self.text[rows], self.group[rows], words)


Embed = Callable[[list[str]], "np.ndarray"]


def featurize(config: FeatureConfig, prompts: Sequence[str], groups: Sequence[str | None], embed: Embed) -> Features:
    import numpy as np

    from tokenomy.routing.words import count_matrix

    vectors = embed([config.window(p) for p in prompts])
    stats = np.array([text_statistics(p) for p in prompts], dtype=np.float64).reshape(len(prompts), -1)
    text = (stats - np.array(config.text_mean)) / np.array(config.text_std)
    if config.text_low:
        text = np.clip(text, np.array(config.text_low), np.array(config.text_high))
    index = {g: i for i, g in enumerate(config.groups)}
    group = np.array([index.get(g, -1) if g else -1 for g in groups], dtype=np.int64)
    return Features(embedding=np.asarray(vectors, dtype=np.float32), text=text, group=group,
                    words=count_matrix(prompts))
