"""The answer-equivalence check's own error (issue 22): how often it misses a wrong answer (its sensitivity bounds
the verified policy's evidence, ``cache.semantic.checker_sensitivity``) and how often it calls equal answers
different (false alarms cost hits, not the bound).

    PYTHONPATH=src .venv/bin/python bench/semantic_checker.py [--limit N]

Data: shared/data/routing/routellm_gsm8k.jsonl (RouteLLM evals, Apache-2.0; GSM8K, MIT): two models' free-text
answers to the same grade-school maths question. Two answers that are both graded correct state the same result
(*equivalent*); one graded correct and one wrong state different results (*different*); both wrong is unknown and
left out. The two answers are written by different models, so they differ in wording as paraphrased answers do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tokenomy.cache.semantic.layer import answers_agree  # noqa: E402
from tokenomy.cache.semantic.online import wrong_share_upper  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "routing" / "routellm_gsm8k.jsonl"
if not DATA.exists():
    DATA = Path("/work/shared/data/routing/routellm_gsm8k.jsonl")
Z = 1.645  # one-sided 95 %


def pairs(limit: int | None) -> list[tuple[str, str, bool]]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answers = [o for o in row["outcomes"].values() if isinstance(o.get("response"), str)]
        if len(answers) != 2:
            continue
        (a, b), scores = (o["response"].strip() for o in answers), [o["score"] for o in answers]
        if scores == [1.0, 1.0]:
            out.append((a, b, True))
        elif sorted(scores) == [0.0, 1.0]:
            out.append((a, b, False))
    return out[:limit] if limit else out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--agreement-cosine", type=float, default=0.95)
    args = parser.parse_args()
    from tokenomy.embeddings.minilm import MiniLMEmbedder

    rows = pairs(args.limit)
    embedder = MiniLMEmbedder.load()
    cosines = []
    for start in range(0, len(rows), 64):
        chunk = rows[start:start + 64]
        va = embedder.embed([a for a, _, _ in chunk]).vectors
        vb = embedder.embed([b for _, b, _ in chunk]).vectors
        cosines += [float(x @ y) for x, y in zip(va, vb, strict=True)]
    rules = {"cosine only (the calibrated policy's near-miss check)": lambda a, b, c: c >= args.agreement_cosine,
             "answers_agree (cosine + same numbers, leading yes/no, negations)":
                 lambda a, b, c: answers_agree(a, b, c, args.agreement_cosine)}
    different = sum(not same for _, _, same in rows)
    equivalent = len(rows) - different
    print(f"{len(rows)} answer pairs: {equivalent} equivalent, {different} different")
    print("| check | caught different (sensitivity) | 95 % lower bound | equivalent called different |")
    print("|---|---|---|---|")
    for name, rule in rules.items():
        caught = sum(not rule(a, b, c) for (a, b, same), c in zip(rows, cosines, strict=True) if not same)
        alarms = sum(not rule(a, b, c) for (a, b, same), c in zip(rows, cosines, strict=True) if same)
        lower = 1 - wrong_share_upper(different - caught, different, Z)
        print(f"| {name} | {caught} / {different} = {caught / different:.3f} | {lower:.3f} "
              f"| {alarms} / {equivalent} = {alarms / equivalent:.3f} |")


if __name__ == "__main__":
    main()
