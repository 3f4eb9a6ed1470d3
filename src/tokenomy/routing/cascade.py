"""Cascade: ask the cheapest model first; escalate to the frontier model when a learned check says its answer is
probably not good.

The check is a ridge regression of the cheap model's score on the prompt's features plus the cheap answer's own
(MiniLM embedding of the answer's last :data:`ANSWER_CHARS` characters, the same text statistics, and the answer
flags: states a final answer, ends with a number, hedges or refuses, its final number is not a whole number, and
how many of the answer's own calculations, ``a op b = c`` and ``<<a op b=c>>``, it states and gets wrong), trained
on training rows whose cheap outcome carries a ``response``. A cascade pays the cheap call on every row and the
frontier call on the escalated ones. It escalates where the expected gain is largest: the router's expected
frontier score on the prompt minus the check's predicted cheap score on the answer (ranking by the cheap score
alone ignores that some prompts are hard for the frontier model too; it measured lower, docs/routing.md). Its
operating point is the escalation margin τ (escalate when that gain > τ).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenomy.routing import quality as q
from tokenomy.routing.features import Embed, FeatureConfig, Features, text_statistics

if TYPE_CHECKING:
    import numpy as np

ANSWER_CHARS = 768
MIN_ROWS = 50
QUANTILES = 101
ANSWER_FLAGS = ("final_answer", "ends_with_number", "hedges", "final_not_whole", "calculations", "wrong_calculations")
FIRST_FLAGS = ANSWER_FLAGS[:3]  # what routers trained before the calculation checks read (their manifest names none)
_FINAL = re.compile(r"(?i)####|final answer|the answer is|answer:|\\boxed")
_HEDGE = re.compile(r"(?i)i'?m sorry|i cannot|i can't|not sure|unclear|cannot be determined|not enough information")
_DIGIT = re.compile(r"\d")
_NUM = r"\$?\d[\d,]*(?:\.\d+)?%?"
_OP = r"(?:\\?\*|[+\-/x×÷])"
_STATED = re.compile(r"(?<![\w.,$*/+\-(])(" + _NUM + r"(?:\s*" + _OP + r"\s*" + _NUM + r")+)\s*=\s*(?:<<[^>]*>>)?\s*(-?"
                     + _NUM + ")")
_ANNOTATED = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_LAST_NUMBER = re.compile(r"(?:####\s*|answer is\s*|\\boxed\{)\$?(-?\d[\d,]*(?:\.\d+)?)")
_ARITHMETIC = re.compile(r"^[\d.+\-*/() ]+$")
_SPLIT = re.compile(r"\n|(?<=[.!?])\s+(?=[A-Z$(])")  # lines, and sentences (a decimal point is not followed by a space)
MAX_PIECES, MAX_PIECE_CHARS = 100, 240


def answer_flags(answer: str, names: tuple[str, ...] = ANSWER_FLAGS) -> list[float]:
    """The flags ``names`` (of :data:`ANSWER_FLAGS`) of one answer: 0 or 1 each, the two calculation counts as
    log(1 + count)."""
    values: dict[str, float] = {}
    values["final_answer"] = float(bool(_FINAL.search(answer)))
    values["ends_with_number"] = float(bool(_DIGIT.search(answer.strip()[-20:])))
    values["hedges"] = float(bool(_HEDGE.search(answer)))
    if len(names) > len(FIRST_FLAGS):
        final = _LAST_NUMBER.findall(answer)
        values["final_not_whole"] = float(bool(final) and _not_whole(final[-1]))
        stated, wrong = calculations(answer)
        values["calculations"], values["wrong_calculations"] = math.log1p(stated), math.log1p(wrong)
    return [values[n] for n in names]


def _not_whole(number: str) -> bool:
    try:
        return float(number.replace(",", "")) % 1 != 0
    except ValueError:
        return False


def calculations(answer: str) -> tuple[int, int]:
    """How many calculations ``answer`` states (``12 x 3 = 36``, ``<<12*3=36>>``) that can be checked, and how many
    of them are wrong (off by more than rounding to cents or to a whole number)."""
    stated = wrong = 0
    for found in (m for piece in _pieces(answer) for m in (*_ANNOTATED.finditer(piece), *_STATED.finditer(piece))):
        left, right = _value(found.group(1)), _value(found.group(2))
        if left is None or right is None:
            continue
        stated += 1
        close = abs(left - right) <= max(0.011, 1e-6 * abs(left)) or (abs(left - right) < 0.5 and
                                                                        float(round(left)) == right)
        wrong += not close
    return stated, wrong


def _pieces(answer: str) -> list[str]:
    """The answer's lines and sentences that may hold a calculation: at most :data:`MAX_PIECES` of the last ones, each
    at most :data:`MAX_PIECE_CHARS` long. The patterns backtrack over a run of numbers and operators that ends in no
    ``=`` (quadratic in its length: 2-4 s for 10,000 characters of ``12 + 12 + …``), and the answer is a model's output
    read on the request path, so the text they see is bounded."""
    pieces = [p for p in _SPLIT.split(answer) if p.strip()]
    return [p for p in pieces[-MAX_PIECES:] if len(p) <= MAX_PIECE_CHARS]


def _value(text: str) -> float | None:
    """The value of a plain arithmetic expression (numbers, + − × ÷, brackets, %), else None. No ``eval``: a
    small recursive-descent reader."""
    plain = (text.replace("\\*", "*").replace("×", "*").replace("x", "*").replace("÷", "/").replace("$", "")
             .replace(",", "").replace("%", "/100").strip())
    if not plain or not _ARITHMETIC.match(plain) or plain.count("(") != plain.count(")"):
        return None
    tokens = re.findall(r"\d+(?:\.\d+)?|[+\-*/()]", plain)
    try:
        value, rest = _sum(tokens)
    except (IndexError, ValueError, ZeroDivisionError, RecursionError, OverflowError):
        return None
    return value if not rest else None


def _sum(tokens: list[str]) -> tuple[float, list[str]]:
    value, tokens = _product(tokens)
    while tokens and tokens[0] in "+-":
        op, (right, tokens) = tokens[0], _product(tokens[1:])
        value = value + right if op == "+" else value - right
    return value, tokens


def _product(tokens: list[str]) -> tuple[float, list[str]]:
    value, tokens = _atom(tokens)
    while tokens and tokens[0] in "*/":
        op, (right, tokens) = tokens[0], _atom(tokens[1:])
        value = value * right if op == "*" else value / right
    return value, tokens


def _atom(tokens: list[str]) -> tuple[float, list[str]]:
    if tokens[0] == "(":
        value, rest = _sum(tokens[1:])
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced")
        return value, rest[1:]
    if tokens[0] == "-":
        value, rest = _atom(tokens[1:])
        return -value, rest
    return float(tokens[0]), tokens[1:]


def answer_window(answer: str) -> str:
    return answer[-ANSWER_CHARS:]


def answer_features(config: FeatureConfig, answers: list[str], embed: Embed,
                    flags: tuple[str, ...] = ANSWER_FLAGS) -> np.ndarray:
    """(n, d + t + len(flags)): the answer's embedding, its text statistics (scaled like prompts) and its flags."""
    import numpy as np

    vectors = np.asarray(embed([answer_window(a) for a in answers]), dtype=np.float64)
    stats = np.array([text_statistics(a) for a in answers], dtype=np.float64).reshape(len(answers), -1)
    flags_x = np.array([answer_flags(a, flags) for a in answers], dtype=np.float64).reshape(len(answers), -1)
    return np.hstack([vectors, (stats - np.array(config.text_mean)) / np.array(config.text_std), flags_x])


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
    flags: tuple[str, ...] = ANSWER_FLAGS  # the answer flags its design reads (older routers: FIRST_FLAGS)

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


def gain_quantiles(gain: np.ndarray) -> list[float]:
    """The out-of-fold expected gains at quantiles 0, 0.01, …, 1: what a share target reads its margin from."""
    import numpy as np

    return [float(v) for v in np.quantile(gain, np.linspace(0.0, 1.0, QUANTILES))]


def share_margin(quantiles: list[float], share: float) -> float:
    """The margin that escalates about ``share`` of the training rows (the gain above which that share lies);
    share 1 escalates everything, share 0 nothing."""
    import numpy as np

    if share >= 1.0:
        return -np.inf
    if share <= 0.0:
        return np.inf
    return float(np.interp(1.0 - share, np.linspace(0.0, 1.0, len(quantiles)), quantiles))


def escalations(gain: np.ndarray, points: int) -> list[np.ndarray]:
    """Escalation masks from none to all, evenly spaced in escalation share (margins at quantiles of the expected
    gain, no outcome used)."""
    import numpy as np

    order = np.argsort(-gain, kind="stable")  # largest expected gain first
    masks = []
    for k in range(points):
        mask = np.zeros(len(gain), dtype=bool)
        mask[order[: round(k / (points - 1) * len(gain))]] = True
        masks.append(mask)
    return masks


def oof_apgr(gain: np.ndarray, scores: np.ndarray, costs: np.ndarray, points: int = 21) -> dict[str, float]:
    """APGR of the escalation curve on training rows from out-of-fold gains: ``scores``/``costs`` are
    ``(rows, [frontier, cheap])``; ``oof_apgr`` on the escalation-share axis, ``oof_apgr_cost`` on the cost axis
    (every cheap call paid)."""
    import numpy as np

    from tokenomy.routing.metrics import point, reference, summarise

    keep = ~np.isnan(scores).any(axis=1)
    scores, costs, gain = scores[keep], costs[keep], gain[keep]
    names = ["frontier", "cheap"]
    ref = reference(names, scores, costs)
    if not ref.share_axis:
        return {}
    curve = [point(ref, names, np.where(mask, 0, 1), scores, costs, extra_cost=np.where(mask, costs[:, 1], 0.0))
             for mask in escalations(gain, points)]
    summary = summarise(ref, curve)
    return {"oof_apgr": float(summary["apgr"]), "oof_apgr_cost": float(summary["apgr_cost"])}
