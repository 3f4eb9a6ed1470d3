"""The verified semantic-cache policy (issue 22) measured with the real protocol on every pair set we have, a harder
set built here, and a stream whose traffic shifts half-way.

    PYTHONPATH=src .venv/bin/python bench/semantic_verified.py --build   # (re)write the two built files (seed 22)
    PYTHONPATH=src .venv/bin/python bench/semantic_verified.py [--markdown] [--out FILE.json]

Each set runs ``tokenomy cache eval --pairs F --verified`` (``Evaluation.run(..., verified=(0.02, 0.05, 0.1))``):
lookups in file order, labels revealed only for the lookups the cache chose to verify.

Sets:
- ``gptcache``: shared/data/cache/gptcache_paraphrases.jsonl (999 pairs, all same), in file order;
- ``gptcache-cross``: the same with cross-row negatives (``--cross-negatives``);
- ``paraphrase-mix``: bench/data/paraphrase_pairs.jsonl (GPTCache positives, GSM8K questions with one number
  changed, two chatterbot questions of one topic; its cross-row rows are left out, see ``sets``), shuffled with
  seed 22;
- ``hard`` (built, bench/data/semantic_hard_pairs.jsonl): for each GPTCache row its paraphrase (``same``) and the
  paraphrase edited so that its answer changes (``same: false``): a number changed, a negation added, or a named
  entity swapped for another row's; plus the 500 GSM8K number changes; shuffled;
- ``shift`` (built, bench/data/semantic_shift_stream.jsonl): first half GPTCache rows 0-499 asked as paraphrases and
  rows 500-998's paraphrases asked against them (duplicates common, easy); second half the same cached questions
  asked with an edit that changes the answer, re-asked paraphrases and GSM8K number changes (see ``build``);
- ``shift-late`` (built, bench/data/semantic_shift_late_stream.jsonl): a shift after the cache has certified; first
  half every GPTCache row asked as its paraphrase, second half 500 answer-changing edits of those questions and 499
  re-asked paraphrases (see ``build_late_shift``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tokenomy.cache.semantic.evaluate import (  # noqa: E402
    VERIFIED_LEVELS,
    Evaluation,
    Pair,
    cross_negatives,
    read_pairs,
)
from tokenomy.cache.semantic.features import normalise  # noqa: E402

DATA = Path(__file__).with_name("data")
GPTCACHE = ROOT.parent / "shared" / "data" / "cache" / "gptcache_paraphrases.jsonl"
if not GPTCACHE.exists():
    GPTCACHE = Path("/work/shared/data/cache/gptcache_paraphrases.jsonl")
MIX = DATA / "paraphrase_pairs.jsonl"
HARD = DATA / "semantic_hard_pairs.jsonl"
SHIFT = DATA / "semantic_shift_stream.jsonl"
SHIFT_LATE = DATA / "semantic_shift_late_stream.jsonl"
SEED = 22
AUX = re.compile(r"\b(is|are|was|were|can|could|will|would|should|does|do|did|has|have|must|may)\b", re.I)
NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
ENTITY = re.compile(r"(?<=[a-z,] )([A-Z][A-Za-z0-9]+(?:\s[A-Z][A-Za-z0-9]+)*)")


def _number(text: str, rng: random.Random) -> str | None:
    found = list(NUMBER.finditer(text))
    if not found:
        return None
    pick = rng.choice(found)
    value = float(pick.group())
    changed = value + rng.choice((1, 2, 3, 5, 10)) if value < 1000 else value * 2
    shown = str(int(changed)) if changed == int(changed) else f"{changed:g}"
    return text[:pick.start()] + shown + text[pick.end():]


def _negation(text: str) -> str | None:
    found = AUX.search(text)
    if not found or re.match(r"\s+not\b", text[found.end():]):
        return None
    return text[:found.end()] + " not" + text[found.end():]


def _entity(text: str, names: list[str], rng: random.Random) -> str | None:
    found = list(ENTITY.finditer(text))
    if not found:
        return None
    pick = rng.choice(found)
    others = [n for n in names if n.lower() != pick.group().lower() and n.lower() not in text.lower()]
    if not others:
        return None
    return text[:pick.start()] + rng.choice(others) + text[pick.end():]


def edit(text: str, names: list[str], rng: random.Random) -> tuple[str, str] | None:
    """The text with one change that changes its answer: (kind, edited), or None when no edit applies."""
    kinds = ["number", "negation", "entity"]
    rng.shuffle(kinds)
    for kind in kinds:
        edited = (_number(text, rng) if kind == "number" else _negation(text) if kind == "negation"
                  else _entity(text, names, rng))
        if edited and edited != text:
            return kind, edited
    return None


def build() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rng = random.Random(SEED)
    rows = [json.loads(line) for line in GPTCACHE.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = sorted({m.group() for r in rows for m in ENTITY.finditer(r["a"] + " " + r["b"])})
    edits = {}
    hard: list[dict[str, object]] = []
    for i, row in enumerate(rows):
        hard.append({"a": row["a"], "b": row["b"], "same": True, "kind": "paraphrase"})
        edited = edit(row["b"], names, rng)
        if edited is not None:
            edits[i] = {"a": row["a"], "b": edited[1], "same": False, "kind": edited[0]}
            hard.append(edits[i])
    mix = [json.loads(line) for line in MIX.read_text(encoding="utf-8").splitlines() if line.strip()]
    numbers = [{**r, "kind": "number"} for r in mix if r["kind"] == "gsm8k-number"]
    hard += numbers
    rng.shuffle(hard)
    # The shift stream. First half: GPTCache rows 0-499 asked as paraphrases, and the paraphrases of rows 500-998
    # asked against them (negatives whose own question is never cached). Second half: the same cached questions
    # asked with their answer changed by an edit, re-asked paraphrases, and GSM8K questions with a number changed.
    half = len(rows) // 2
    first = [{"a": rows[i]["a"], "b": rows[i]["b"], "same": True, "kind": "easy"} for i in range(half)]
    first += [{"a": rows[i - half]["a"], "b": rows[i]["b"], "same": False, "kind": "easy"}
              for i in range(half, len(rows))]
    rng.shuffle(first)
    second = [edits[i] for i in range(half) if i in edits] + rng.sample(numbers, 250)
    second += rng.sample([{**r, "kind": "paraphrase"} for r in first if r["same"]], len(first) - len(second))
    rng.shuffle(second)
    return hard, first + second


def build_late_shift() -> list[dict[str, object]]:
    """A shift after the cache has certified: first half every GPTCache row asked as its paraphrase (all duplicates,
    shuffled), second half 500 of those questions asked with an answer-changing edit and 499 paraphrases re-asked,
    shuffled (seed 23)."""
    rng = random.Random(SEED + 1)
    rows = [json.loads(line) for line in GPTCACHE.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = sorted({m.group() for r in rows for m in ENTITY.finditer(r["a"] + " " + r["b"])})
    first = [{"a": r["a"], "b": r["b"], "same": True, "kind": "paraphrase"} for r in rows]
    rng.shuffle(first)
    edits = []
    for r in rows:
        edited = edit(r["b"], names, rng)
        if edited is not None:
            edits.append({"a": r["a"], "b": edited[1], "same": False, "kind": edited[0]})
    second = rng.sample(edits, 500) + rng.sample([{**r, "kind": "paraphrase"} for r in first], len(rows) - 500)
    rng.shuffle(second)
    return first + second


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def sets() -> dict[str, list[Pair]]:
    """The sets, each fit for the protocol (a lookup whose true paraphrase is cached must be labelled so): the mix
    leaves out its cross-row rows (their ``b`` is another row's paraphrase, whose ``a`` is cached) and topic pairs
    whose ``b`` is itself a cached ``a``."""
    rows = [json.loads(line) for line in MIX.read_text(encoding="utf-8").splitlines() if line.strip()]
    cached = {normalise(r["a"]) for r in rows}
    mix = [Pair(r["a"], r["b"], r["same"]) for r in rows
           if r["kind"] != "cross-row" and not (r["kind"] == "chatterbot-topic" and normalise(r["b"]) in cached)]
    random.Random(SEED).shuffle(mix)
    gptcache = read_pairs(GPTCACHE)
    return {"gptcache": gptcache, "gptcache-cross": cross_negatives(gptcache), "paraphrase-mix": mix,
            "hard": read_pairs(HARD), "shift": read_pairs(SHIFT), "shift-late": read_pairs(SHIFT_LATE)}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def markdown(results: dict[str, dict[str, object]]) -> str:
    lines = ["| set (rows, same) | `max_error` | served: correct / wrong | wrong share [95 % CI] | correct-hit rate "
             "| verified | net saving | 2nd half wrong share |",
             "|---|---|---|---|---|---|---|---|"]
    for name, report in results.items():
        for row in report["verified"]:  # type: ignore[attr-defined]
            ci = row["wrong_share_95"]
            interval = f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else ""
            second = row["halves"][1]
            lines.append(f"| {name} ({report['pairs']:,}, {report['same_rows']:,}) | {row['max_error']} "
                         f"| {row['correct_hits']} / {row['wrong_hits']} | {_pct(row['wrong_share'])}{interval} "
                         f"| {_pct(row['correct_hit_rate'])} | {_pct(row['verification_share'])} "
                         f"| {_pct(row['net_saving'])} | {_pct(second['wrong_share'])} "
                         f"({second['correct_hits']} / {second['wrong_hits']}) |")
    return "\n".join(lines)


def bands(embedder: object, pairs: list[Pair]) -> list[tuple[float, int, int]]:
    """Per band of the evidence's cuts: (cut, lookups, wrong), every label seen."""
    from tokenomy.cache.semantic.cache import SemanticCache
    from tokenomy.cache.semantic.evaluate import CONTEXT
    from tokenomy.cache.semantic.evidence import CUTS
    from tokenomy.cache.semantic.features import normalise
    from tokenomy.cache.semantic.verifier import load_calibration

    embed = embedder.embed  # type: ignore[attr-defined]
    entries = list(dict.fromkeys(normalise(p.a) for p in pairs))
    cache = SemanticCache(load_calibration(), max_error=0.05)
    cache.insert_many(CONTEXT, entries, embed(entries).vectors, entries)
    vectors = embed([p.b for p in pairs]).vectors
    out = {cut: [0, 0] for cut in (*CUTS, 0.0)}
    for pair, vector in zip(pairs, vectors, strict=True):
        match = cache.lookup(CONTEXT, pair.b, vector)
        if match is None:
            continue
        cut = next(c for c in (*CUTS, 0.0) if match.score >= c)
        out[cut][0] += 1
        out[cut][1] += not (pair.same and match.entry.text == normalise(pair.a))
    return [(cut, n, wrong) for cut, (n, wrong) in out.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="store_true", help="rewrite the built hard set and shift stream")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--only", help="comma-separated set names")
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--checker-sensitivity", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--bands", action="store_true",
                        help="instead: every lookup's score band and label (all labels seen: a diagnosis)")
    args = parser.parse_args()
    if args.build:
        hard, shift = build()
        _write(HARD, hard)
        _write(SHIFT, shift)
        late = build_late_shift()
        _write(SHIFT_LATE, late)
        print(f"{len(hard)} hard pairs -> {HARD}; {len(shift)} rows -> {SHIFT}; {len(late)} rows -> {SHIFT_LATE}")
        return
    from tokenomy.cache.semantic.verifier import load_calibration
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder.load()
    evaluation = Evaluation(lambda texts: embedder.embed(list(texts)).vectors, load_calibration())
    results = {}
    for name, pairs in sets().items():
        if args.only and name not in args.only.split(","):
            continue
        if args.bands:
            print(name, bands(embedder, pairs))
            continue
        report = evaluation.run(pairs, max_error=0.05, sweep=(0.05,), embed_timing_samples=0,
                                verified=VERIFIED_LEVELS, explore=args.explore,
                                checker_sensitivity=args.checker_sensitivity)
        results[name] = report
        print(name, json.dumps(report["verified"]), file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(markdown(results) if args.markdown else json.dumps(results))


if __name__ == "__main__":
    main()
