"""Bag-of-words features and the ``words`` learner: a ridge regression on hashed TF-IDF word and word-pair counts.

The prompt (at most its first and last :data:`CAP_CHARS` / 2 characters) is lower-cased and cut into ``\\w+``
words; every word and every pair of neighbouring words is hashed (CRC-32) into one of :data:`BUCKETS` columns.
Values are ``1 + log(count)`` times the column's smoothed IDF on the training prompts (columns seen in fewer than
:data:`MIN_DF` training prompts are dropped), each row scaled to unit length: scikit-learn's ``TfidfVectorizer``
with ``sublinear_tf`` over a hashing vocabulary, written out so the router directory holds plain arrays and a
decision needs no scikit-learn.

The learner predicts the residual of every model's score over the group prior (``quality.group_table``), one
ridge solve per model (``scipy.sparse.linalg.lsqr``). Measured out of fold it adds what the sentence embedding
misses (wording: "NOT", "EXCEPT", a passage shared by several questions; docs/routing.md).
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

BUCKETS = 1 << 16
CAP_CHARS = 4000
MIN_DF = 2
_WORD = re.compile(r"\w+")


def terms(text: str) -> list[str]:
    """The words and neighbouring word pairs of ``text`` (its first and last ``CAP_CHARS / 2`` characters)."""
    if len(text) > CAP_CHARS:
        text = text[: CAP_CHARS // 2] + " " + text[-CAP_CHARS // 2 :]
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def bucket_counts(text: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for term in terms(text):
        column = zlib.crc32(term.encode("utf-8")) % BUCKETS
        counts[column] = counts.get(column, 0) + 1
    return counts


def count_matrix(texts: Sequence[str]) -> Any:
    """``(len(texts), BUCKETS)`` sparse CSR matrix of term counts."""
    import numpy as np
    import scipy.sparse as sp

    indptr, columns, values = [0], list[int](), list[int]()
    for text in texts:
        counts = bucket_counts(text)
        columns.extend(counts)
        values.extend(counts.values())
        indptr.append(len(columns))
    return sp.csr_matrix((np.asarray(values, dtype=np.float64), np.asarray(columns, dtype=np.int64),
                          np.asarray(indptr, dtype=np.int64)), shape=(len(texts), BUCKETS))


def fit_idf(counts: Any) -> np.ndarray:
    """Smoothed IDF per column, 0 for columns in fewer than :data:`MIN_DF` rows."""
    import numpy as np

    df = np.bincount(counts.indices, minlength=BUCKETS)
    idf: np.ndarray = np.log((1 + counts.shape[0]) / (1 + df)) + 1.0
    idf[df < MIN_DF] = 0.0
    return idf


def tfidf(counts: Any, idf: np.ndarray) -> Any:
    import numpy as np
    import scipy.sparse as sp

    x = counts.copy()
    x.data = 1.0 + np.log(x.data)
    x = x @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x


@dataclass
class WordsModel:
    """``idf``: (BUCKETS,); ``weights``: (BUCKETS, models); ``bias``: (models,) — residual over the prior."""

    idf: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, counts: Any, residual: np.ndarray, alpha: float) -> WordsModel:
        import numpy as np
        from scipy.sparse.linalg import lsqr

        idf = fit_idf(counts)
        x = tfidf(counts, idf)
        weights = np.zeros((BUCKETS, residual.shape[1]))
        bias = np.zeros(residual.shape[1])
        for m in range(residual.shape[1]):
            rows = ~np.isnan(residual[:, m])
            if not rows.any():
                continue
            bias[m] = residual[rows, m].mean()
            weights[:, m] = lsqr(x[rows], residual[rows, m] - bias[m], damp=math.sqrt(alpha), atol=1e-6,
                                 btol=1e-6)[0]
        return cls(idf.astype(np.float32), weights.astype(np.float32), bias)

    def predict(self, counts: Any) -> np.ndarray:
        """``(rows, models)`` residuals for a CSR count matrix; plain numpy over its arrays (one prompt at
        serving time costs tens of microseconds, no sparse-matrix algebra)."""
        import numpy as np

        result = np.tile(self.bias, (counts.shape[0], 1))
        if counts.nnz == 0:
            return result
        columns, starts = counts.indices, counts.indptr[:-1]
        values = (1.0 + np.log(counts.data)) * self.idf[columns]
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(rows, weights=values**2, minlength=counts.shape[0]))
        scaled = values / np.maximum(norms[rows], 1e-12)
        filled = np.diff(counts.indptr) > 0
        sums = np.add.reduceat(scaled[:, None] * self.weights[columns], starts[filled], axis=0)
        result[filled] += sums
        return result
