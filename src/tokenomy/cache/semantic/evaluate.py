"""``tokenomy cache eval``: the semantic cache measured on labelled pairs.

Protocol (issue 5): insert every distinct ``a`` of the file into an empty semantic cache; look up every ``b``. A
*correct hit* serves the row's own ``a`` on a ``same: true`` row; every other hit is a *wrong hit*. Reported:
``correct_hit_rate`` = correct hits / ``same: true`` rows, ``wrong_share`` = wrong hits / all hits, lookup latency,
and a sweep over ``max_error``. Nothing is fitted on the file's labels: the verifier and thresholds come from the
shipped calibration. ``online`` replays the lookups in file order and reveals each row's label only after its
lookup, as user feedback would, to the online threshold (reported separately).

``verified`` (the default policy, issue 22) plays the real protocol instead: lookups come in file order, nothing is
served until the cache's own verified labels allow it, and a row's label is revealed only when the cache chose to
verify that lookup (it went upstream: spend, never a saving). Per ``max_error``: the wrong share of served hits
with its 95 % Wilson interval, the correct-hit rate, the verification share and the net saving (upstream calls
avoided per lookup), overall and for each half of the stream (a shift half-way must not hide in the total).
``checker_sensitivity`` < 1 simulates an answer-equivalence check that catches only that share of wrong answers
(the cache is told the same figure and accounts for it).

Entries are matched on normalised text (whitespace collapsed, case folded), so two ``a`` that differ only in
spacing or case are one entry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.cache.semantic.cache import Match, SemanticCache
from tokenomy.cache.semantic.evidence import Evidence
from tokenomy.cache.semantic.features import normalise
from tokenomy.cache.semantic.online import wrong_share_upper
from tokenomy.cache.semantic.verifier import Calibration
from tokenomy.errors import InvalidRequestError
from tokenomy.jsonl import json_objects

DEFAULT_SWEEP = (0.01, 0.02, 0.05, 0.1, 0.2)
VERIFIED_LEVELS = (0.02, 0.05, 0.1)
Z_INTERVAL = 1.96  # the measured wrong share's two-sided 95 % interval
BASELINE_COSINE = 0.8  # GPTCache's default similarity threshold
CONTEXT = "eval"

Embed = Callable[[Sequence[str]], Any]  # texts -> (n, d) unit vectors
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


def read_pairs(path: Path) -> list[Pair]:
    """Rows ``{"a": str, "b": str, "same": bool}``; a malformed row fails with its line number."""
    pairs = []
    for where, row in json_objects(path, InvalidRequestError, "pairs file"):
        a, b, same = row.get("a"), row.get("b"), row.get("same")
        if not isinstance(a, str) or not a.strip() or not isinstance(b, str) or not b.strip():
            raise InvalidRequestError(f"{where}: 'a' and 'b' must be non-empty strings")
        if not isinstance(same, bool):
            raise InvalidRequestError(f"{where}: 'same' must be true or false")
        pairs.append(Pair(a, b, same))
    if not pairs:
        raise InvalidRequestError(f"{path}: no pairs")
    return pairs


def cross_negatives(pairs: Sequence[Pair]) -> list[Pair]:
    """A file with negatives built by pairing across rows: the first half keeps its pairs; each row of the second
    half is asked with its ``b`` against a first-half ``a``, labelled ``same: false``, and its own ``a`` is never
    inserted — so every hit on it is wrong. Positives and negatives alternate, as questions with and without a
    cached paraphrase would in traffic."""
    half = len(pairs) // 2
    first = list(pairs[:half])
    negatives = [Pair(first[i % half].a, p.b, False) for i, p in enumerate(pairs[half:])]
    mixed: list[Pair] = []
    for i in range(max(len(first), len(negatives))):
        mixed.extend(first[i:i + 1])
        mixed.extend(negatives[i:i + 1])
    return mixed


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def _score(matches: Sequence[tuple[Pair, Match | None]], served: Callable[[Match], bool]) -> dict[str, Any]:
    correct = wrong = 0
    for pair, match in matches:
        if match is None or not served(match):
            continue
        if pair.same and match.entry.text == normalise(pair.a):
            correct += 1
        else:
            wrong += 1
    same_rows = sum(p.same for p, _ in matches)
    hits = correct + wrong
    return {"correct_hits": correct, "wrong_hits": wrong, "misses": len(matches) - hits,
            "correct_hit_rate": round(correct / same_rows, 4) if same_rows else None,
            "wrong_share": round(wrong / hits, 4) if hits else 0.0}


def _at_least(threshold: float) -> Callable[[Match], bool]:
    return lambda match: match.score >= threshold


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Evaluation:
    def __init__(self, embed: Embed, calibration: Calibration, *, progress: Progress | None = None,
                 batch: int = 64) -> None:
        self._embed, self._calibration = embed, calibration
        self._progress = progress or (lambda _stage, _done, _total: None)
        self._batch = batch

    def _vectors(self, stage: str, texts: Sequence[str]) -> list[Any]:
        """One vector per text; a text that repeats is embedded once."""
        distinct = list(dict.fromkeys(texts))
        out: list[Any] = []
        for chunk in _batches(distinct, self._batch):
            out.extend(self._embed(chunk))
            self._progress(stage, len(out), len(distinct))
        found = dict(zip(distinct, out, strict=True))
        return [found[text] for text in texts]

    def run(self, pairs: Sequence[Pair], *, max_error: float, sweep: Sequence[float] = DEFAULT_SWEEP,
            online: bool = False, embed_timing_samples: int = 100, verified: Sequence[float] = (),
            explore: float = 0.1, checker_sensitivity: float = 1.0, seed: int = 0) -> dict[str, Any]:
        entries = list(dict.fromkeys(normalise(p.a) for p in pairs))
        a_vectors = self._vectors("embedding cached entries", entries)
        b_vectors = self._vectors("embedding lookups", [p.b for p in pairs])
        levels = sorted({*sweep, max_error})

        cache = self._filled(entries, a_vectors, max_error, online=False)
        matches: list[tuple[Pair, Match | None]] = []
        latency_ms: list[float] = []
        for pair, vector in zip(pairs, b_vectors, strict=True):
            started = time.perf_counter()
            match = cache.lookup(CONTEXT, pair.b, vector)
            latency_ms.append((time.perf_counter() - started) * 1000)
            matches.append((pair, match))
        embed_ms = []
        for pair in pairs[:embed_timing_samples]:
            started = time.perf_counter()
            self._embed([pair.b])
            embed_ms.append((time.perf_counter() - started) * 1000)

        rows = []
        for level in levels:
            threshold = self._calibration.threshold(level)
            rows.append({"max_error": level, "threshold": round(threshold, 4),
                         **_score(matches, _at_least(threshold))})
        main = next(r for r in rows if r["max_error"] == max_error)
        report: dict[str, Any] = {
            "pairs": len(pairs), "same_rows": sum(p.same for p in pairs), "entries": len(entries),
            "calibration": self._calibration.source, **main,
            "lookup_ms": {"p50": round(_percentile(latency_ms, 50), 3), "p99": round(_percentile(latency_ms, 99), 3)},
            "embed_ms": {"p50": round(_percentile(embed_ms, 50), 3), "p99": round(_percentile(embed_ms, 99), 3)},
            "sweep": rows,
            "baseline": {"rule": f"cosine >= {BASELINE_COSINE} (GPTCache default)",
                         **_score(matches, lambda m: m.cosine >= BASELINE_COSINE)},
        }
        if online:
            report["online"] = [self._online(pairs, entries, a_vectors, b_vectors, level) for level in levels]
        if verified:
            report["verified"] = [
                self._verified(pairs, entries, a_vectors, b_vectors, level, explore=explore,
                               checker_sensitivity=checker_sensitivity, seed=seed) for level in verified]
        return report

    def _verified(self, pairs: Sequence[Pair], entries: Sequence[str], a_vectors: Sequence[Any],
                  b_vectors: Sequence[Any], level: float, *, explore: float, checker_sensitivity: float,
                  seed: int) -> dict[str, Any]:
        evidence = Evidence(level, checker_sensitivity=checker_sensitivity)
        cache = SemanticCache(self._calibration, max_error=level, evidence=evidence, explore=explore, seed=seed,
                              dimensions=len(a_vectors[0]) if a_vectors else 384)
        for text, vector in zip(entries, a_vectors, strict=True):
            cache.insert(CONTEXT, text, vector, answer_key=text)
        checker = random.Random(seed + 1)
        half = len(pairs) // 2
        tallies = [_Tally(), _Tally()]
        for row, (pair, vector) in enumerate(zip(pairs, b_vectors, strict=True)):
            tally = tallies[row >= half]
            tally.lookups += 1
            tally.same += pair.same
            match = cache.lookup(CONTEXT, pair.b, vector)
            if match is None:
                continue
            right = pair.same and match.entry.text == normalise(pair.a)
            if match.served:
                tally.correct += right
                tally.wrong += not right
            elif match.verify:  # it went upstream; only now is this row's label seen
                tally.verified += 1
                tally.explored += match.servable
                seen = right or checker.random() >= checker_sensitivity
                cache.verified(match, seen, exact=checker_sensitivity >= 1)
        whole = tallies[0] + tallies[1]
        return {"max_error": level, **whole.report(), "halves": [t.report() for t in tallies],
                "final_threshold": round(cache.threshold, 4), "labels": evidence.observed,
                "resets": evidence.resets}

    def _filled(self, entries: Sequence[str], vectors: Sequence[Any], max_error: float, *,
                online: bool) -> SemanticCache:
        cache = SemanticCache(self._calibration, max_error=max_error, online=online,
                              dimensions=len(vectors[0]) if vectors else 384)
        for text, vector in zip(entries, vectors, strict=True):
            cache.insert(CONTEXT, text, vector, answer_key=text)
        return cache

    def _online(self, pairs: Sequence[Pair], entries: Sequence[str], a_vectors: Sequence[Any],
                b_vectors: Sequence[Any], level: float) -> dict[str, Any]:
        cache = self._filled(entries, a_vectors, level, online=True)
        served: list[tuple[Pair, Match | None]] = []
        for pair, vector in zip(pairs, b_vectors, strict=True):
            match = cache.lookup(CONTEXT, pair.b, vector)
            served.append((pair, match))
            if match is not None:  # the label arrives only after the lookup was answered
                cache.feedback(match, pair.same and match.entry.text == normalise(pair.a))
        return {"max_error": level, "final_threshold": round(cache.threshold, 4),
                **_score(served, lambda m: m.served)}


@dataclass
class _Tally:
    lookups: int = 0
    same: int = 0
    correct: int = 0
    wrong: int = 0
    verified: int = 0
    explored: int = 0

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(*(a + b for a, b in zip(self._row(), other._row(), strict=True)))

    def _row(self) -> tuple[int, ...]:
        return (self.lookups, self.same, self.correct, self.wrong, self.verified, self.explored)

    def report(self) -> dict[str, Any]:
        hits = self.correct + self.wrong
        interval = ([round(1 - wrong_share_upper(hits - self.wrong, hits, Z_INTERVAL), 4),
                     round(wrong_share_upper(self.wrong, hits, Z_INTERVAL), 4)] if hits else None)
        n = self.lookups
        return {"lookups": n, "correct_hits": self.correct, "wrong_hits": self.wrong,
                "wrong_share": round(self.wrong / hits, 4) if hits else 0.0, "wrong_share_95": interval,
                "correct_hit_rate": round(self.correct / self.same, 4) if self.same else None,
                "verification_share": round(self.verified / n, 4) if n else 0.0,
                "explored_share": round(self.explored / n, 4) if n else 0.0,
                "net_saving": round(hits / n, 4) if n else 0.0}
