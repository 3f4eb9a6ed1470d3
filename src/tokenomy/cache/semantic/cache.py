"""The semantic cache's policy: where an entry may be served (its context), which entry is the candidate, and
whether the verifier's score clears the threshold for the operator's ``max_error``.

A *context* is everything about the request except the text of the last user turn (system prompt, earlier turns,
model or router, output-affecting parameters, namespace), hashed: a paraphrase is only ever matched against entries
of the identical context. Each entry points at the exact-cache key of the answer it stands for, so answers are
stored once, by the exact cache, and a semantic hit whose answer has expired is a miss.

Thread-safety: lookups and inserts take one lock; embedding happens outside it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from tokenomy.cache.semantic.evidence import Evidence, Label, kind_of
from tokenomy.cache.semantic.features import normalise, pair_features
from tokenomy.cache.semantic.index import SMALL_LIMIT, SmallIndex, USearchIndex, VectorIndex
from tokenomy.cache.semantic.online import OnlineThreshold
from tokenomy.cache.semantic.verifier import Calibration


@dataclass(frozen=True)
class Entry:
    id: int
    context: str
    text: str  # normalised
    answer_key: str


@dataclass(frozen=True)
class Match:
    entry: Entry
    cosine: float
    score: float  # the verifier's probability that serving this entry is right
    features: tuple[float, ...]
    served: bool  # the policy lets it answer
    verify: bool = False  # the verified policy: compare the fresh upstream answer with this entry's (a label)
    servable: bool = False  # the verified policy would have served it (a verification here is exploration)
    kind: int = 0  # the verified policy's kind of pair (evidence.KINDS)


class SemanticCache:
    """``evidence`` set: the verified policy (``evidence.py``: serve only where this traffic's verified labels bound
    the wrong share; a servable lookup is still verified with probability ``explore``). Else the calibrated policy:
    the shipped threshold table, moved by ``online`` labels."""

    def __init__(self, calibration: Calibration, *, max_error: float, dimensions: int = 384,
                 online: bool = False, max_entries: int = 1_000_000, evidence: Evidence | None = None,
                 explore: float = 0.1, seed: int | None = None) -> None:
        self._calibration = calibration
        self._threshold = calibration.threshold(max_error)
        self._online = OnlineThreshold(max_error, self._threshold) if online and evidence is None else None
        self.evidence = evidence
        self._explore = explore
        self._random = random.Random(seed)
        self._dimensions, self._max_entries = dimensions, max_entries
        self._indexes: dict[str, VectorIndex] = {}
        self._entries: dict[int, Entry] = {}
        self._by_text: dict[tuple[str, str], int] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    @property
    def threshold(self) -> float:
        if self.evidence is not None:
            return self.evidence.threshold
        return self._online.threshold if self._online else self._threshold

    def __len__(self) -> int:
        return len(self._entries)

    def insert(self, context: str, text: str, vector: Any, answer_key: str) -> Entry:
        """Store (or refresh) the entry for this context and normalised text."""
        norm = normalise(text)
        with self._lock:
            known = self._by_text.get((context, norm))
            if known is not None:
                entry = Entry(known, context, norm, answer_key)
                self._entries[known] = entry
                return entry
            if len(self._entries) >= self._max_entries:
                self._evict_oldest()
            entry = Entry(self._next_id, context, norm, answer_key)
            self._next_id += 1
            self._index_for(context, 1).add(entry.id, vector)
            self._entries[entry.id] = entry
            self._by_text[(context, norm)] = entry.id
            return entry

    def insert_many(self, context: str, texts: list[str], vectors: Any, answer_keys: list[str]) -> int:
        """Bulk load (a warm start, a benchmark): new texts only, one index call. Returns how many were added."""
        with self._lock:
            fresh: list[tuple[str, str]] = []
            seen: set[str] = set()
            rows = []
            for row, (text, key) in enumerate(zip(texts, answer_keys, strict=True)):
                norm = normalise(text)
                if (context, norm) in self._by_text or norm in seen:
                    continue
                seen.add(norm)
                fresh.append((norm, key))
                rows.append(row)
            room = self._max_entries - len(self._entries)
            fresh, rows = fresh[:max(0, room)], rows[:max(0, room)]
            if not fresh:
                return 0
            ids = list(range(self._next_id, self._next_id + len(fresh)))
            self._next_id += len(fresh)
            self._index_for(context, len(ids)).add_many(ids, vectors[rows])
            for entry_id, (norm, key) in zip(ids, fresh, strict=True):
                self._entries[entry_id] = Entry(entry_id, context, norm, key)
                self._by_text[(context, norm)] = entry_id
            return len(fresh)

    def _index_for(self, context: str, adding: int) -> VectorIndex:
        """The context's index, created small and moved to usearch once it would outgrow SMALL_LIMIT."""
        index = self._indexes.get(context)
        if index is None:
            index = self._indexes[context] = SmallIndex(self._dimensions)
        if isinstance(index, SmallIndex) and len(index) + adding > SMALL_LIMIT:
            keys, vectors = index.items()
            index = self._indexes[context] = USearchIndex(self._dimensions)
            if keys:
                index.add_many(keys, vectors)
        return index

    def _drop_from_index(self, entry: Entry) -> None:
        index = self._indexes[entry.context]
        index.remove(entry.id)
        if len(index) == 0:
            del self._indexes[entry.context]

    def lookup(self, context: str, text: str, vector: Any) -> Match | None:
        """The nearest entry of this context, scored; ``served`` says whether the rule lets it answer."""
        with self._lock:
            index = self._indexes.get(context)
            if index is None:
                return None
            found = index.search(vector, 2)
            if not found:
                return None
            key, cosine = found[0]
            second = found[1][1] if len(found) > 1 else 0.0
            entry = self._entries[key]
            threshold = self.threshold
        features = pair_features(normalise(text), entry.text, cosine, max(0.0, second))
        score = self._calibration.score(features)
        if self.evidence is None:
            return Match(entry, cosine, score, tuple(features), score >= threshold)
        if score < self.evidence.floor:  # not a would-be hit: a plain miss
            return Match(entry, cosine, score, tuple(features), False)
        kind = kind_of(features)
        with self._lock:
            servable = self.evidence.servable(score, kind)
            explore = servable and self._random.random() < self.evidence.verify_share(kind, self._explore)
            if servable and not explore:
                self.evidence.served(kind)
        return Match(entry, cosine, score, tuple(features), servable and not explore, verify=not servable or explore,
                     servable=servable, kind=kind)

    def verified(self, match: Match, correct: bool, *, exact: bool = True) -> Label | None:
        """The label of a verified lookup (its fresh answer compared with the entry's): evidence for its region.
        A wrong entry that would have been served is dropped, so that mistake is never served. Returns the label
        (for the entry log to share), None when this cache keeps no evidence."""
        if self.evidence is None:
            return None
        label = Label(match.score, not correct, exact, match.kind)
        self.observe(label)
        if match.servable and not correct:
            self.remove(match.entry.id)
        return label

    def observe(self, label: Label) -> None:
        """A label made here or by another replica (replayed from the shared log, or loaded on start)."""
        if self.evidence is not None:
            with self._lock:
                self.evidence.observe(label)

    def feedback(self, match: Match, correct: bool) -> None:
        """A user's verdict on a looked-up candidate (served or not); moves the online threshold. A wrong served
        entry is also dropped, so the same mistake is not served twice. Under the verified policy only a wrong
        verdict counts as evidence (reports are not a random sample: counting the "right" ones would flatter)."""
        if self._online is not None:
            with self._lock:
                self._online.observe(match.score, correct)
        if self.evidence is not None and not correct:
            self.observe(Label(match.score, True, True, kind_of(match.features)))
        if match.served and not correct:
            self.remove(match.entry.id)

    def remove(self, entry_id: int) -> None:
        with self._lock:
            entry = self._entries.pop(entry_id, None)
            if entry is None:
                return
            self._by_text.pop((entry.context, entry.text), None)
            self._drop_from_index(entry)

    def remove_text(self, context: str, text: str) -> None:
        """Drop the entry of this context and text, if there is one (a removal another replica published)."""
        with self._lock:
            entry_id = self._by_text.get((context, normalise(text)))
        if entry_id is not None:
            self.remove(entry_id)

    def _evict_oldest(self) -> None:
        oldest = next(iter(self._entries))  # dicts keep insertion order: the first key is the oldest entry
        entry = self._entries.pop(oldest)
        self._by_text.pop((entry.context, entry.text), None)
        self._drop_from_index(entry)

