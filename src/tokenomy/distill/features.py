"""The head student's features: sentence embeddings of the prompt and of each of its inputs, pair features, and
hashed lexical features.

Dense block (standardised on the training rows, scaled to unit expected norm):
- the embedding of the last user turn (MiniLM, 384 dimensions);
- for a structured task (:mod:`tokenomy.distill.parts`) with inputs a, b, …: each input's embedding, and for the
  first two |a − b|, a ⊙ b, cos(a, b) and lexical overlaps (word Jaccard, containment each way, number overlap,
  log length ratio): the features that make "do these two agree?" linear.
Sparse blocks (each row L2-normalised, sublinear tf · idf):
- ``word``: hashed word unigrams and bigrams of the user turn (plus, for structured tasks, the words the first two
  inputs share, as their own features);
- ``char``: hashed character 2–4-grams within words.
Hashing (scikit-learn's ``HashingVectorizer``) keeps no vocabulary, so a student directory holds only arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenomy.distill.parts import parts_for

if TYPE_CHECKING:
    import numpy as np

Embed = Callable[[list[str]], "np.ndarray"]
HASH_FEATURES = 2**20
MIN_DF = 2
_WORD = re.compile(r"\w+", re.U)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
OVERLAPS = 5


@dataclass
class FeatureSpec:
    """What was fitted on the training rows; ``arrays`` go to the student's npz, the rest to its JSON."""

    parts: int
    views: tuple[str, ...]  # subset of ("word", "char")
    arrays: dict[str, Any]  # dense_mean, dense_scale, columns_<view>, idf_<view>

    def config(self) -> dict[str, Any]:
        return {"parts": self.parts, "views": list(self.views)}


def _vectorizer(view: str) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    if view == "word":
        return HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm=None)
    return HashingVectorizer(n_features=HASH_FEATURES, analyzer="char_wb", ngram_range=(2, 4), alternate_sign=False,
                             norm=None)


def _overlaps(a: str, b: str) -> list[float]:
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    na, nb = set(_NUMBER.findall(a)), set(_NUMBER.findall(b))
    inter = len(wa & wb)
    return [inter / max(len(wa | wb), 1), inter / max(len(wa), 1), inter / max(len(wb), 1),
            len(na & nb) / max(len(na | nb), 1) if na | nb else 1.0,
            math.log((len(a) + 1) / (len(b) + 1))]


def dense_raw(users: Sequence[str], parts: int, embed: Embed) -> np.ndarray:
    import numpy as np

    whole = embed(list(users))
    if parts < 2:
        return whole
    split = [parts_for(u, parts) for u in users]
    fields = [embed([s[i] for s in split]) for i in range(parts)]
    a, b = fields[0], fields[1]
    cos = (a * b).sum(axis=1, keepdims=True)
    overlaps = np.array([_overlaps(s[0], s[1]) for s in split], dtype=np.float32)
    return np.hstack([whole, *fields, np.abs(a - b), a * b, cos, overlaps]).astype(np.float32)


def _lexical_text(user: str, view: str, parts: int) -> str:
    if view != "word" or parts < 2:
        return user
    a, b = parts_for(user, parts)[:2]
    shared = set(_WORD.findall(a.lower())) & set(_WORD.findall(b.lower()))
    return user + " " + " ".join(f"shared_{w}" for w in sorted(shared))


def _sparse(users: Sequence[str], view: str, parts: int, columns: np.ndarray | None,
            idf: np.ndarray | None) -> tuple[Any, np.ndarray, np.ndarray]:
    """Hashed counts restricted to ``columns`` (the hashes seen in at least ``MIN_DF`` training rows: far fewer
    dimensions to fit, the same predictions), sublinear tf × idf, L2-normalised rows."""
    import numpy as np
    from sklearn.preprocessing import normalize

    counts = _vectorizer(view).transform([_lexical_text(u, view, parts) for u in users]).tocsc()
    if columns is None or idf is None:
        df = np.diff(counts.indptr)
        columns = np.flatnonzero(df >= MIN_DF).astype(np.int64)
        idf = (np.log((1 + counts.shape[0]) / (1 + df[columns])) + 1).astype(np.float32)
    kept = counts[:, columns].tocsr()
    kept.data = (1 + np.log(kept.data)) * idf[kept.indices]
    return normalize(kept), columns, idf


def fit_features(users: Sequence[str], parts: int, views: Sequence[str], dense: np.ndarray) -> FeatureSpec:
    import numpy as np

    arrays: dict[str, Any] = {"dense_mean": dense.mean(axis=0), "dense_scale": dense.std(axis=0) + 1e-6}
    for view in views:
        _, arrays[f"columns_{view}"], arrays[f"idf_{view}"] = _sparse(users, view, parts, None, None)
    arrays = {k: v if k.startswith("columns_") else np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    return FeatureSpec(parts=parts, views=tuple(views), arrays=arrays)


def transform(spec: FeatureSpec, users: Sequence[str], dense: np.ndarray) -> Any:
    """The feature matrix (scipy CSR) of ``users`` whose raw dense block is ``dense``."""
    import numpy as np
    from scipy import sparse

    scaled = (dense - spec.arrays["dense_mean"]) / spec.arrays["dense_scale"] / np.sqrt(dense.shape[1])
    blocks = [sparse.csr_matrix(scaled.astype(np.float32))]
    for view in spec.views:
        matrix, _, _ = _sparse(users, view, spec.parts, spec.arrays[f"columns_{view}"], spec.arrays[f"idf_{view}"])
        blocks.append(matrix)
    return sparse.hstack(blocks, format="csr")
