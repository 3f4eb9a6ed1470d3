"""Per-model quality predictors: expected score of every model on a prompt. Numpy (and scipy for ``words``).

Four learners over the same features, and a linear blend of them fitted on out-of-fold predictions:

- ``ridge``: multi-output ridge regression on [embedding, text statistics, group one-hot] (standardised columns);
- ``knn``: mean score of the k most similar training prompts (cosine over embeddings), shrunk towards the prior;
- ``group``: the mean score of the prompt's group, shrunk towards the overall mean (the overall mean without
  groups);
- ``words``: the group prior plus a ridge regression of the residual on hashed TF-IDF word and word-pair counts
  (:mod:`tokenomy.routing.words`).

The blend is either per model (an intercept and one weight per learner for each model) or shared (one weight per
learner for every model, fitted on scores centred per prompt, so it weighs the learners by how well they predict
which model is better on a prompt rather than how hard the prompt is), or the average of the two (a blend too:
:func:`combine` is linear in the weights); :mod:`tokenomy.routing.selection` picks.

Scores missing for a (row, model) are left out of that model's fit. The fitted state is plain arrays, saved in
the router directory as ``.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenomy.routing.features import Features
from tokenomy.routing.words import WordsModel

if TYPE_CHECKING:
    import numpy as np

COMPONENTS = ("ridge", "knn", "group", "words")
GROUP_SHRINK = 20.0


@dataclass(frozen=True)
class Hyper:
    """``alpha``: ridge penalty on standardised columns; ``embedding_weight``/``group_weight`` scale those blocks
    against the text statistics (a weight w is a penalty alpha / w² on that block)."""

    alpha: float = 100.0
    embedding_weight: float = 1.0
    group_weight: float = 1.0
    k: int = 50
    knn_shrink: float = 5.0
    words_alpha: float = 10.0


def design(features: Features, groups: int, hyper: Hyper) -> np.ndarray:
    """[embedding, text statistics, group one-hot]; each block's columns standardised later by the ridge."""
    import numpy as np

    onehot = np.zeros((len(features.group), groups))
    known = features.group >= 0
    onehot[np.nonzero(known)[0], features.group[known]] = 1.0
    return np.hstack([features.embedding.astype(np.float64), features.text, onehot])


def block_weights(features: Features, groups: int, hyper: Hyper) -> np.ndarray:
    import numpy as np

    dims = features.embedding.shape[1], features.text.shape[1], groups
    return np.concatenate([np.full(dims[0], hyper.embedding_weight), np.ones(dims[1]),
                           np.full(dims[2], hyper.group_weight)])


@dataclass
class RidgeModel:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float, weights_by_column: np.ndarray) -> RidgeModel:
        import numpy as np

        mean, scale = x.mean(axis=0), (x.std(axis=0) + 1e-6) / np.maximum(weights_by_column, 1e-9)
        z = (x - mean) / scale
        weights = np.zeros((x.shape[1], y.shape[1]))
        bias = np.zeros(y.shape[1])
        penalty = alpha * np.eye(x.shape[1])
        if not np.isnan(y).any():  # one Gram matrix and one solve for every model
            zc = z - z.mean(axis=0)
            weights = np.linalg.solve(zc.T @ zc + penalty, zc.T @ (y - y.mean(axis=0)))
            return cls(mean, scale, weights, y.mean(axis=0) - z.mean(axis=0) @ weights)
        for m in range(y.shape[1]):
            rows = ~np.isnan(y[:, m])
            zm, ym = z[rows], y[rows, m]
            zc = zm - zm.mean(axis=0)
            weights[:, m] = np.linalg.solve(zc.T @ zc + penalty, zc.T @ (ym - ym.mean()))
            bias[m] = ym.mean() - zm.mean(axis=0) @ weights[:, m]
        return cls(mean, scale, weights, bias)

    def predict(self, x: np.ndarray) -> np.ndarray:
        result: np.ndarray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return result


def group_table(group: np.ndarray, y: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-group shrunk means ``(groups, models)``, overall means ``(models,)``)."""
    import numpy as np

    overall = np.nanmean(y, axis=0)
    table = np.tile(overall, (max(groups, 1), 1))
    for g in range(groups):
        rows = group == g
        if rows.any():
            seen = ~np.isnan(y[rows])
            total = np.nansum(y[rows], axis=0)
            table[g] = (total + GROUP_SHRINK * overall) / (seen.sum(axis=0) + GROUP_SHRINK)
    return table, overall


def group_predict(table: np.ndarray, overall: np.ndarray, group: np.ndarray) -> np.ndarray:
    import numpy as np

    result: np.ndarray = np.where((group >= 0)[:, None], table[np.maximum(group, 0)], overall[None, :])
    return result


def neighbours(query: np.ndarray, bank: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` most similar bank rows per query row (cosine), most similar first. ``exclude[i]`` is a
    bank row query ``i`` may not see (itself), or -1."""
    import numpy as np

    k = max(1, min(k, len(bank) - (1 if exclude is not None else 0)))
    out = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), 1024):
        chunk = query[start : start + 1024]
        # one query (a decision): numpy's own single-threaded loop, not BLAS. OpenBLAS threads even the
        # matrix-vector product; on a loaded 2-core box that measured 8-12 ms p50 against 0.2 ms for einsum
        sims = np.einsum("nd,d->n", bank, chunk[0])[None, :] if len(chunk) == 1 else chunk @ bank.T
        if exclude is not None:
            rows = np.nonzero(exclude[start : start + 1024] >= 0)[0]
            sims[rows, exclude[start + rows]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + 1024] = np.take_along_axis(top, order, axis=1)
    return out


def knn_from(near: np.ndarray, bank_y: np.ndarray, prior: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """Mean score over the first ``k`` neighbours, shrunk towards ``prior`` with weight ``shrink``."""
    import numpy as np

    top = near[:, :k]
    filled = np.where(np.isnan(bank_y), 0.0, bank_y)
    seen = (~np.isnan(bank_y)).astype(np.float64)
    result: np.ndarray = (filled[top].sum(axis=1) + shrink * prior) / (seen[top].sum(axis=1) + shrink)
    return result


@dataclass
class QualityModel:
    """The fitted predictors and their blend (``blend[m]`` = intercept, then one weight per component)."""

    ridge: RidgeModel
    bank: np.ndarray
    bank_y: np.ndarray
    group_means: np.ndarray
    overall: np.ndarray
    groups: int
    hyper: Hyper
    blend: np.ndarray
    words: WordsModel | None = None

    @classmethod
    def fit(cls, features: Features, y: np.ndarray, groups: int, hyper: Hyper, blend: np.ndarray) -> QualityModel:
        table, overall = group_table(features.group, y, groups)
        ridge = RidgeModel.fit(design(features, groups, hyper), y, hyper.alpha, block_weights(features, groups, hyper))
        words = None
        if features.words is not None and blend[:, 1 + COMPONENTS.index("words")].any():
            words = WordsModel.fit(features.words, y - group_predict(table, overall, features.group),
                                   hyper.words_alpha)
        return cls(ridge, features.embedding.astype("float32"), y, table, overall, groups, hyper, blend, words)

    def components(self, features: Features) -> np.ndarray:
        """``(components, n, models)``: each learner's prediction, in :data:`COMPONENTS` order."""
        import numpy as np

        prior = group_predict(self.group_means, self.overall, features.group)
        near = knn_from(neighbours(features.embedding, self.bank, self.hyper.k), self.bank_y, prior,
                        self.hyper.k, self.hyper.knn_shrink)
        ridge = self.ridge.predict(design(features, self.groups, self.hyper))
        words = prior if self.words is None or features.words is None else prior + self.words.predict(features.words)
        return np.stack([ridge, near, prior, words])

    def predict(self, features: Features) -> np.ndarray:
        return combine(self.components(features), self.blend)


def combine(parts: np.ndarray, blend: np.ndarray) -> np.ndarray:
    """Blend ``(components, n, models)`` with ``blend`` ``(models, 1 + components)``."""
    import numpy as np

    result: np.ndarray = blend[:, 0][None, :] + np.einsum("cnm,mc->nm", parts, blend[:, 1:])
    return result


def fit_blend(parts: np.ndarray, y: np.ndarray, use: tuple[bool, ...], shared: bool = False) -> np.ndarray:
    """Least-squares blend weights from out-of-fold component predictions; ``use`` masks components.
    ``shared``: one weight per component for every model (see :func:`fit_shared_blend`), else per model."""
    if shared:
        return fit_shared_blend(parts, y, use)
    import numpy as np

    count, _, models = parts.shape
    blend = np.zeros((models, 1 + count))
    chosen = [c for c in range(count) if use[c]]
    for m in range(models):
        rows = ~np.isnan(y[:, m])
        x = np.column_stack([np.ones(rows.sum())] + [parts[c, rows, m] for c in chosen])
        coef = np.linalg.lstsq(x.T @ x + 1e-6 * np.eye(x.shape[1]), x.T @ y[rows, m], rcond=None)[0]
        blend[m, 0] = coef[0]
        for i, c in enumerate(chosen):
            blend[m, 1 + c] = coef[1 + i]
    return blend


def average_blend(parts: np.ndarray, y: np.ndarray, use: tuple[bool, ...]) -> np.ndarray:
    """The mean of the per-model and the shared blend: predicts the mean of their predictions. Their out-of-fold
    merits are within noise of each other on every file measured; averaging them lowers the variance of the
    weights (docs/routing.md, "What was tried")."""
    result: np.ndarray = (fit_blend(parts, y, use) + fit_shared_blend(parts, y, use)) / 2
    return result


def fit_shared_blend(parts: np.ndarray, y: np.ndarray, use: tuple[bool, ...]) -> np.ndarray:
    """One weight per component, the same for every model, fitted on scores and predictions centred per prompt
    (what separates the models on a prompt, not how hard the prompt is); per-model intercepts then match each
    model's mean score."""
    import numpy as np

    count, _, models = parts.shape
    chosen = [c for c in range(count) if use[c]]
    seen = ~np.isnan(y)
    y_centred = y - np.nanmean(y, axis=1, keepdims=True)
    columns = []
    for c in chosen:
        part = np.where(seen, parts[c], np.nan)
        columns.append((part - np.nanmean(part, axis=1, keepdims=True))[seen])
    x = np.column_stack(columns)
    coef = np.linalg.lstsq(x.T @ x + 1e-6 * np.eye(x.shape[1]), x.T @ y_centred[seen], rcond=None)[0]
    blend = np.zeros((models, 1 + count))
    for i, c in enumerate(chosen):
        blend[:, 1 + c] = coef[i]
    for m in range(models):
        rows = seen[:, m]
        blend[m, 0] = y[rows, m].mean() - sum(blend[m, 1 + c] * parts[c, rows, m].mean() for c in chosen)
    return blend
