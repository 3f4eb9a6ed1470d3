"""The ``head`` student: features (:mod:`tokenomy.distill.features`) → logistic regression, blended with a kNN vote
on the prompt embeddings, with a calibrated confidence.

Training picks its configuration on the training rows only, by 3-fold cross-validation (folds by prompt hash):
which lexical views to add (none, words, words + characters), the L2 strength (C), and the kNN weight (0 or ½).
The winner (best out-of-fold agreement, then log-loss) is refitted on every training row, and a temperature is fitted
on its out-of-fold probabilities (minimum log-loss), so "confidence 0.9" means about 9 in 10 agree.

``plain`` is the baseline the issue measures against: a linear head on one embedding of the whole prompt (system +
user turn), its C chosen by the same cross-validation, nothing else.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenomy.distill.examples import Example
from tokenomy.distill.features import Embed, FeatureSpec, dense_raw, fit_features, transform
from tokenomy.distill.parts import fit_schema
from tokenomy.errors import DistillError

if TYPE_CHECKING:
    import numpy as np

FOLDS = 3
C_GRID = (0.3, 3.0, 30.0)
VIEW_GRID: tuple[tuple[str, ...], ...] = ((), ("word",), ("word", "char"))
KNN_GRID = (0.0, 0.5)
KNN_K, KNN_TAU = 10, 0.05
TEMPERATURES = tuple(round(0.25 + 0.05 * i, 2) for i in range(56))  # 0.25 … 3.0
Step = Callable[[str], None]


@dataclass
class HeadModel:
    classes: list[str]
    mode: str  # "head" | "plain"
    spec: FeatureSpec
    coef: np.ndarray
    intercept: np.ndarray
    knn_weight: float
    bank: np.ndarray  # float16 (n, 384) training prompt embeddings, for the kNN vote
    bank_labels: np.ndarray
    temperature: float
    report: dict[str, Any] = field(default_factory=dict)

    def input_text(self, example: Example) -> str:
        return f"{example.system}\n{example.user}" if self.mode == "plain" else example.user

    def probabilities(self, examples: Sequence[Example], embed: Embed) -> np.ndarray:
        users = [self.input_text(e) for e in examples]
        dense = dense_raw(users, self.spec.parts, embed)
        linear = _softmax_logits(transform(self.spec, users, dense) @ self.coef.T + self.intercept)
        probs = _blend(linear, dense[:, :384], self.bank, self.bank_labels, len(self.classes), self.knn_weight)
        return _temper(probs, self.temperature)


def _softmax_logits(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    if logits.shape[1] == 1:  # binary: scikit-learn keeps one column for the second class
        logits = np.hstack([np.zeros_like(logits), logits])
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _knn(queries: np.ndarray, bank: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    import numpy as np

    sims = queries @ np.asarray(bank, dtype=np.float32).T
    k = min(KNN_K, bank.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    votes = np.zeros((len(queries), classes), dtype=np.float64)
    rows = np.arange(len(queries))[:, None]
    weights = np.exp((sims[rows, top] - 1.0) / KNN_TAU)
    np.add.at(votes, (np.repeat(rows, k, axis=1), labels[top]), weights)
    votes += 1e-6
    out: np.ndarray = votes / votes.sum(axis=1, keepdims=True)
    return out


def _blend(linear: np.ndarray, queries: np.ndarray, bank: np.ndarray, labels: np.ndarray, classes: int,
           weight: float) -> np.ndarray:
    if weight <= 0 or bank.shape[0] == 0:
        return linear
    out: np.ndarray = (1 - weight) * linear + weight * _knn(queries, bank, labels, classes)
    return out


def _temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    import numpy as np

    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    import numpy as np

    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def _fit_lr(x: Any, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    import warnings

    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny sets; the CV score is what counts
        model = LogisticRegression(C=c, max_iter=1000).fit(x, y)
    return model.coef_.astype("float32"), model.intercept_.astype("float32")


def train_head(train: Sequence[Example], embed: Embed, *, mode: str = "head", step: Step | None = None) -> HeadModel:
    import numpy as np

    say = step or (lambda _text: None)
    classes = sorted({e.answer for e in train})
    if len(classes) < 2:
        raise DistillError("the head student needs at least two distinct answers in the training set")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[e.answer] for e in train])
    users = [f"{e.system}\n{e.user}" if mode == "plain" else e.user for e in train]
    parts = 1 if mode == "plain" else fit_schema(users)
    say(f"embedding {len(users):,} prompts" + (f" and their {parts} inputs" if parts > 1 else ""))
    dense = dense_raw(users, parts, embed)
    folds = np.array([int(e.prompt_hash[8:16], 16) % FOLDS for e in train])
    view_grid = ((),) if mode == "plain" else VIEW_GRID
    knn_grid = (0.0,) if mode == "plain" else KNN_GRID
    oof: dict[tuple[tuple[str, ...], float], np.ndarray] = {}
    for views, c in itertools.product(view_grid, C_GRID):
        say(f"cross-validating views={'+'.join(views) or 'dense'} C={c}")
        probs = np.zeros((len(train), len(classes)))
        for fold in range(FOLDS):
            fit, held = folds != fold, folds == fold
            if not held.any() or len(set(y[fit])) < 2:
                continue
            spec = fit_features([users[i] for i in np.flatnonzero(fit)], parts, views, dense[fit])
            x = transform(spec, users, dense)
            coef, intercept = _fit_lr(x[fit], y[fit], c)
            linear = np.zeros((int(held.sum()), len(classes)))
            present = np.unique(y[fit])
            linear[:, present] = _softmax_logits(x[held] @ coef.T + intercept)
            probs[held] = linear
        oof[(views, c)] = probs
    knn_oof = np.zeros((len(train), len(classes)))
    for fold in range(FOLDS):
        held = folds == fold
        if held.any() and (~held).any():
            knn_oof[held] = _knn(dense[held, :384], dense[~held, :384], y[~held], len(classes))
    table: list[dict[str, Any]] = []
    for (views, c), probs in oof.items():
        for weight in knn_grid:
            blended = (1 - weight) * probs + weight * knn_oof
            table.append({"views": list(views), "C": c, "knn_weight": weight,
                          "cv_agreement": float((blended.argmax(axis=1) == y).mean()),
                          "cv_log_loss": _nll(blended, y), "_probs": blended})
    best = max(table, key=lambda r: (round(r["cv_agreement"], 6), -r["cv_log_loss"]))
    temperature = min(TEMPERATURES, key=lambda t: _nll(_temper(best["_probs"], t), y))
    say(f"refitting the best ({'+'.join(best['views']) or 'dense'}, C={best['C']}, kNN {best['knn_weight']})")
    views = tuple(best["views"])
    spec = fit_features(users, parts, views, dense)
    coef, intercept = _fit_lr(transform(spec, users, dense), y, best["C"])
    report = {"mode": mode, "parts": parts, "chosen": {k: v for k, v in best.items() if not k.startswith("_")},
              "temperature": temperature, "cv": [{k: v for k, v in r.items() if not k.startswith("_")}
                                                 for r in table]}
    bank = dense[:, :384].astype(np.float16) if best["knn_weight"] else np.zeros((0, 384), dtype=np.float16)
    return HeadModel(classes=classes, mode=mode, spec=spec, coef=coef, intercept=intercept,
                     knn_weight=float(best["knn_weight"]), bank=bank,
                     bank_labels=y if best["knn_weight"] else np.zeros(0, dtype=np.int64),
                     temperature=temperature, report=report)
