"""What the verifier sees about a (query, cached entry) pair: the embedding similarity, how ambiguous the match is
(the gap to the second-nearest entry), and cheap lexical checks for the differences embeddings blur — numbers,
negation, content words present on one side only."""

from __future__ import annotations

import math
import re

FEATURE_NAMES = ("cosine", "gap", "jaccard", "recall", "numbers_differ", "negation_differs", "length_ratio",
                 "unmatched_query", "unmatched_entry", "all_matched")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NEGATION = frozenset({"not", "no", "never", "nor", "none", "nobody", "nothing", "without", "cannot"})
_STOP_WORDS = (
    "a an the of to in on for and or is are was were be been it this that with as at by from what how why when "
    "where who which do does did can could should would will i you he she we they my your"
)
_STOP = frozenset(_STOP_WORDS.split())


def normalise(text: str) -> str:
    """The form an entry is stored and matched under: whitespace collapsed, case folded (MiniLM is uncased)."""
    return " ".join(text.split()).lower()


def _negated(words: list[str]) -> int:
    return sum(w in _NEGATION or w.endswith("n't") for w in words) % 2


def pair_features(query: str, entry: str, cosine: float, second_cosine: float) -> list[float]:
    """Features in :data:`FEATURE_NAMES` order. ``second_cosine`` is the query's similarity to the next-nearest
    entry of the same context (0 when there is none)."""
    wq, we = _WORD.findall(query.lower()), _WORD.findall(entry.lower())
    cq, ce = set(wq) - _STOP, set(we) - _STOP
    shared = len(cq & ce)
    jaccard = shared / max(1, len(cq | ce))
    recall = min(shared / max(1, len(cq)), shared / max(1, len(ce)))
    numbers_differ = float({w for w in wq if w.isdigit()} != {w for w in we if w.isdigit()})
    negation = float(_negated(wq) != _negated(we))
    length_ratio = abs(math.log((len(wq) + 1) / (len(we) + 1)))
    uq, ue = len(cq - ce), len(ce - cq)
    return [cosine, cosine - second_cosine, jaccard, recall, numbers_differ, negation, length_ratio,
            float(min(uq, 4)), float(min(ue, 4)), float(uq + ue == 0)]
