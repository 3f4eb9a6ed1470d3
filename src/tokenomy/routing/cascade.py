"""Cascade: ask the cheapest model first; escalate to the frontier model when a learned check says its answer is
probably not good.

The check is a ridge regression of the cheap model's score on the prompt's features plus the cheap answer's own
(MiniLM embedding of the answer's last :data:`ANSWER_CHARS` characters and the same text statistics), trained on
training rows whose cheap outcome carries a ``response``. A cascade pays the cheap call on every row and the
frontier call on the escalated ones; its operating point is the escalation threshold τ (escalate when the
predicted cheap score < τ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenomy.routing import quality as q
from tokenomy.routing.features import Embed, FeatureConfig, Features, text_statistics

if TYPE_CHECKING:
    import numpy as np

ANSWER_CHARS = 768
MIN_ROWS = 50


def answer_window(answer: str) -> str:
    return answer[-ANSWER_CHARS:]


def answer_features(config: FeatureConfig, answers: list[str], embed: Embed) -> np.ndarray:
    """(n, 384 + t): the answer's embedding and its standardised text statistics (scaled like prompts)."""
    import numpy as np

    vectors = np.asarray(embed([answer_window(a) for a in answers]), dtype=np.float64)
    stats = np.array([text_statistics(a) for a in answers], dtype=np.float64).reshape(len(answers), -1)
    return np.hstack([vectors, (stats - np.array(config.text_mean)) / np.array(config.text_std)])


def design(prompt: Features, answer: np.ndarray, groups: int, hyper: q.Hyper) -> np.ndarray:
    import numpy as np

    return np.hstack([q.design(prompt, groups, hyper), answer])


def weights(prompt: Features, answer: np.ndarray, groups: int, hyper: q.Hyper) -> np.ndarray:
    import numpy as np

    stats = answer.shape[1] - prompt.embedding.shape[1]
    return np.concatenate([q.block_weights(prompt, groups, hyper),
                           np.full(prompt.embedding.shape[1], hyper.embedding_weight), np.ones(stats)])


@dataclass
class CascadeCheck:
    """Predicts the cheap model's score from the prompt and the cheap answer."""

    cheap: str
    frontier: str
    ridge: q.RidgeModel
    hyper: q.Hyper
    groups: int

    @classmethod
    def fit(cls, cheap: str, frontier: str, prompt: Features, answer: np.ndarray, cheap_scores: np.ndarray,
            groups: int, hyper: q.Hyper) -> CascadeCheck:
        ridge = q.RidgeModel.fit(design(prompt, answer, groups, hyper), cheap_scores[:, None], hyper.alpha,
                                 weights(prompt, answer, groups, hyper))
        return cls(cheap, frontier, ridge, hyper, groups)

    def predict(self, prompt: Features, answer: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.ridge.predict(design(prompt, answer, self.groups, self.hyper))[:, 0]
        return result


def oof_predictions(prompt: Features, answer: np.ndarray, cheap_scores: np.ndarray, groups: int,
                    folds: np.ndarray, hyper: q.Hyper) -> np.ndarray:
    """Each row's predicted cheap score from a check fitted without its fold."""
    import numpy as np

    out = np.zeros(len(cheap_scores))
    for f in np.unique(folds):
        fit, held = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        check = CascadeCheck.fit("", "", prompt.take(fit), answer[fit], cheap_scores[fit], groups, hyper)
        out[held] = check.predict(prompt.take(held), answer[held])
    return out


def escalations(predicted: np.ndarray, points: int) -> list[np.ndarray]:
    """Escalation masks from none to all, evenly spaced in escalation share (thresholds at quantiles of the
    prediction, no outcome used)."""
    import numpy as np

    order = np.argsort(predicted, kind="stable")  # least confident first
    masks = []
    for k in range(points):
        mask = np.zeros(len(predicted), dtype=bool)
        mask[order[: round(k / (points - 1) * len(predicted))]] = True
        masks.append(mask)
    return masks
