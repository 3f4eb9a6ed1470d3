"""Mixed traffic: the cascade on the part of the traffic where it wins, the router elsewhere, one cost budget.

On a mix of tasks only some training rows may carry the cheapest model's answer (GSM8K's do, MMLU's do not), so the
cascade can be measured, and served, only on traffic like those rows. ``route train`` then cuts the traffic into
two *parts* that the gateway tells apart from the prompt alone: a detector (ridge regression on the prompt's
embedding and text statistics; no group, which a request does not carry) learns which training rows carry a cheap
answer. The parts are used only when its out-of-fold balanced accuracy reaches :data:`DETECT_MIN` (a part the
gateway cannot recognise is no part), and each part is the set of training rows the detector put there out of fold.

Each part gets its own candidates, each measured out of fold against the hull of *that part's* single models, per
fold, as :mod:`tokenomy.routing.guard` measures the router (no harm, part by part):

- the part's single models the guard serves (``single``: the hull's sure vertices);
- the router's operating points (λ, μ) whose uplift on the part beats the fold-to-fold noise (``route``);
- on the part of the answered rows, the cascade at 21 escalation shares where its uplift beats the noise
  (``cascade``). A row of that part without a recorded cheap answer is counted at its worse model's score and
  both calls' cost, whatever the check would have said.

One budget is spread over the parts by a Lagrangian: at a price λ of a dollar each part takes its candidate with
the best mean score − λ·mean cost, and the mix's curve is the traffic-weighted sum. Its vertices come from merging
the parts' upper hulls segment by segment in order of falling slope. A target reads its vertex off that curve as
:func:`tokenomy.routing.calibrate.solve` reads the router's table; a request is served its part's candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tokenomy.routing import quality as q
from tokenomy.routing.calibrate import OperatingPoint, Target
from tokenomy.routing.cascade import MIN_ROWS
from tokenomy.routing.guard import hull_at, hull_vertices

if TYPE_CHECKING:
    import numpy as np

    from tokenomy.routing.features import Features

DETECT_MIN = 0.95  # out-of-fold balanced accuracy the part detector needs before parts are used
DETECT_ALPHA = 10.0
# Rows in the answered part before its cascade is measured for a part (the check is fitted on them). Set after
# seeing test figures: on 1,000-row samples of MMLU + GSM8K (about 90 GSM8K rows) the part's cascade looked better
# out of fold than it was and fell 0.3-0.75 points below the test hull near the top; GSM8K alone chose its cascade
# on every 300-row sample without harm (docs/routing.md, "Mixed traffic").
MIN_ANSWERED = 300
NAMES = ("other", "answered")  # part 1: traffic like the training rows that carry the cheap model's answer
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Candidate:
    """What one part serves: a single ``model``, the router at (``lam``, ``mu``), or the cascade escalating
    ``share`` of the part's answered requests; with its out-of-fold figures on the part's training rows."""

    kind: str  # "single" | "route" | "cascade"
    score: float
    usd: float  # mean cost per request, every call charged
    frontier_share: float  # share of the part's requests the frontier model answers
    model: str = ""
    lam: float = 0.0
    mu: float = 0.0
    share: float = 0.0
    uplift: float = 0.0  # out-of-fold mean score minus the part's hull at its cost (0 for a hull vertex)
    spread: float = 0.0

    def point(self) -> OperatingPoint:
        return OperatingPoint(self.lam, self.mu, model=self.model)

    def describe(self) -> str:
        """ASCII words for a route reason."""
        gain = f"out-of-fold uplift {100 * self.uplift:+.1f} +/- {100 * self.spread:.1f} points over the part's hull"
        if self.kind == "single":
            return f"the hull's choice {self.model}"
        if self.kind == "cascade":
            return f"the cascade at escalation share {self.share:.2f} ({gain})"
        rule = f"frontier call charged {self.mu:.3g}" if self.mu else f"lambda {self.lam:.4g}/USD"
        return f"the router at {rule} ({gain})"


@dataclass
class PartPolicy:
    """The detector, each part's candidates and the mix's curve (``table``: per vertex, the candidate each part
    serves, ``picks``, and the mix's out-of-fold ``share``, ``score``, ``usd_per_1k``)."""

    detector: q.RidgeModel
    embedding_weight: float
    weights: list[float]  # each part's share of the training rows
    candidates: list[list[Candidate]]
    table: list[dict[str, Any]]

    def part_of(self, features: Features) -> np.ndarray:
        """Each prompt's part (index into :data:`NAMES`)."""
        import numpy as np

        predicted = self.detector.predict(design(features, self.embedding_weight)[0])[:, 0]
        result: np.ndarray = (predicted > 0.5).astype(np.int64)
        return result

    def solve(self, target: Target, frontier_score: float) -> dict[str, Any]:
        """The vertex that meets ``target`` (vertices run from cheapest to dearest)."""
        rows = self.table
        if target.kind == "quality":
            found = next((r for r in rows if r["score"] >= target.value * frontier_score), None)
            return found or max(rows, key=lambda r: r["score"])
        key = "share" if target.kind == "share" else "usd_per_1k"
        meeting = [r for r in rows if r[key] <= target.value + 1e-12]
        return max(meeting, key=lambda r: (r["score"], -r["usd_per_1k"])) if meeting else rows[0]

    def pick(self, row: dict[str, Any], part: int) -> Candidate:
        return self.candidates[part][int(row["picks"][part])]

    def uses_cascade(self) -> bool:
        return any(self.pick(r, p).kind == "cascade" for r in self.table for p in range(len(self.candidates)))

    def to_json(self) -> dict[str, Any]:
        return {"names": list(NAMES), "embedding_weight": self.embedding_weight, "weights": self.weights,
                "candidates": [[asdict(c) for c in part] for part in self.candidates], "table": self.table}

    def arrays(self) -> dict[str, np.ndarray]:
        ridge = self.detector
        return {"parts_mean": ridge.mean, "parts_scale": ridge.scale, "parts_weights": ridge.weights,
                "parts_bias": ridge.bias}

    @classmethod
    def from_json(cls, info: dict[str, Any], arrays: dict[str, np.ndarray]) -> PartPolicy:
        detector = q.RidgeModel(arrays["parts_mean"], arrays["parts_scale"], arrays["parts_weights"],
                                arrays["parts_bias"])
        return cls(detector, float(info["embedding_weight"]), [float(w) for w in info["weights"]],
                   [[Candidate(**c) for c in part] for part in info["candidates"]], list(info["table"]))


def design(features: Features, embedding_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The detector's design ([embedding, text statistics]) and its column weights."""
    import numpy as np

    x = np.hstack([features.embedding.astype(np.float64), features.text])
    weights = np.concatenate([np.full(features.embedding.shape[1], embedding_weight), np.ones(features.text.shape[1])])
    return x, weights


def fit_detector(features: Features, member: np.ndarray, embedding_weight: float = 1.0) -> q.RidgeModel:
    x, weights = design(features, embedding_weight)
    return q.RidgeModel.fit(x, member.astype(float)[:, None], DETECT_ALPHA, weights)


def oof_parts(features: Features, member: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each training row's part as a detector fitted without its fold puts it."""
    import numpy as np

    out = np.zeros(len(member), dtype=np.int64)
    for f in np.unique(folds):
        fit, held = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
        detector = fit_detector(features.take(fit), member[fit])
        out[held] = detector.predict(design(features.take(held), 1.0)[0])[:, 0] > 0.5
    return out


def balanced_accuracy(member: np.ndarray, found: np.ndarray) -> float:
    import numpy as np

    recalls = [float((found[member == v] == v).mean()) for v in (0, 1) if (member == v).any()]
    return float(np.mean(recalls))


def combine(candidates: list[list[Candidate]], weights: list[float]) -> list[dict[str, Any]]:
    """The mix's curve: the traffic-weighted sum of each part's best candidate at every price λ of a dollar,
    cheapest vertex first (the parts' upper hulls merged segment by segment, steepest first)."""
    hulls = [hull_vertices([c.usd for c in part], [c.score for c in part]) for part in candidates]
    current = [h[0] for h in hulls]
    rows = [_vertex(candidates, weights, current, float("inf"))]
    segments = []
    for p, h in enumerate(hulls):
        for k in range(1, len(h)):
            a, b = candidates[p][h[k - 1]], candidates[p][h[k]]
            segments.append(((b.score - a.score) / (b.usd - a.usd), p, h[k]))
    for slope, p, index in sorted(segments, key=lambda s: -s[0]):
        current[p] = index
        rows.append(_vertex(candidates, weights, current, slope))
    return rows


def _vertex(candidates: list[list[Candidate]], weights: list[float], picks: list[int], lam: float) -> dict[str, Any]:
    chosen = [candidates[p][i] for p, i in enumerate(picks)]
    return {"lambda": lam if lam != float("inf") else None, "picks": list(picks),
            "share": sum(w * c.frontier_share for w, c in zip(weights, chosen, strict=True)),
            "score": sum(w * c.score for w, c in zip(weights, chosen, strict=True)),
            "usd_per_1k": 1000 * sum(w * c.usd for w, c in zip(weights, chosen, strict=True))}


def cascade_candidates(gain: np.ndarray, answered: np.ndarray, scores: np.ndarray, costs: np.ndarray, frontier: int,
                       cheap: int, folds: np.ndarray, points: int = 21) -> list[Candidate]:
    """The cascade on one part's rows at ``points`` escalation shares, where its per-fold uplift over the hull of
    the part's single models beats the noise. ``gain``: the out-of-fold expected gain (ignored where not
    ``answered``: those rows count at their worse model's score and both calls' cost)."""
    import numpy as np

    from tokenomy.routing.cascade import escalations

    rows = np.arange(len(gain))
    worse = np.minimum(scores[:, cheap], scores[:, frontier])
    both = costs[:, cheap] + costs[:, frontier]
    members = [np.nonzero(folds == f)[0] for f in sorted(set(folds.tolist()))]
    sizes = np.array([len(m) for m in members], dtype=float)
    fold_singles = [(list(costs[m].mean(axis=0)), list(scores[m].mean(axis=0))) for m in members]
    found = []
    answered_rows = np.nonzero(answered)[0]
    for sub in escalations(gain[answered_rows], points):
        mask = np.zeros(len(gain), dtype=bool)
        mask[answered_rows[sub]] = True
        chosen = np.where(mask, frontier, cheap)
        got = np.where(answered, scores[rows, chosen], worse)
        paid = np.where(answered, costs[rows, chosen] + np.where(mask, costs[:, cheap], 0.0), both)
        per_fold = np.array([got[m].mean() - hull_at(fc, fs, float(paid[m].mean()))
                             for m, (fc, fs) in zip(members, fold_singles, strict=True)])
        uplift = float(np.average(per_fold, weights=sizes))
        spread = float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else float("inf")
        if uplift > spread + _EPS:
            found.append(Candidate("cascade", float(got.mean()), float(paid.mean()), float(mask.mean()),
                                   share=float(sub.mean()), uplift=uplift, spread=spread))
    return found


def router_candidates(annotated: list[dict[str, Any]], frontier: str) -> list[Candidate]:
    """The single models the guard serves on a part and the router's points that beat that part's hull (the
    part's calibration table annotated by :func:`tokenomy.routing.guard.annotate`)."""
    found = []
    for row in annotated:
        usd = float(row["usd_per_1k"]) / 1000
        if row.get("kind") == "single" and row.get("hull"):
            share = 1.0 if row["model"] == frontier else 0.0
            found.append(Candidate("single", float(row["score"]), usd, share, model=str(row["model"])))
        elif row.get("kind") != "single" and row.get("beats_hull"):
            found.append(Candidate("route", float(row["score"]), usd, float(row["share"]), lam=float(row["lambda"]),
                                   mu=float(row.get("mu", 0.0)), uplift=float(row["uplift"]),
                                   spread=float(row["spread"])))
    return found


def build(features: Features, answered: np.ndarray, gain: np.ndarray, folds: np.ndarray, models: list[str],
          frontier: str, cheap: str, expected: np.ndarray, est_costs: np.ndarray, scores: np.ndarray,
          costs: np.ndarray) -> tuple[PartPolicy | None, dict[str, Any]]:
    """The per-part policy of a mix, or None with the reason. ``answered``: which training rows carry the cheap
    model's answer; ``gain``: the cascade's out-of-fold expected gain there; ``expected``: the out-of-fold
    predictions the guard measures on (every array over the training rows with a score for every model)."""
    import numpy as np

    from tokenomy.routing import calibrate
    from tokenomy.routing.guard import annotate

    found = oof_parts(features, answered, folds)
    accuracy = balanced_accuracy(answered.astype(np.int64), found)
    report: dict[str, Any] = {"detector_oof_balanced_accuracy": accuracy, "detector_min": DETECT_MIN,
                              "rows": [int((found == p).sum()) for p in range(len(NAMES))], "names": list(NAMES)}
    if accuracy < DETECT_MIN or min(report["rows"]) < MIN_ROWS:
        return None, {**report, "built": False,
                      "reason": f"the prompt does not tell the rows with a {cheap} answer from the others out of fold "
                                f"(balanced accuracy {accuracy:.3f} < {DETECT_MIN})"}
    if report["rows"][NAMES.index("answered")] < MIN_ANSWERED:
        return None, {**report, "built": False,
                      "reason": f"{report['rows'][1]} training rows like those with a {cheap} answer; a part's "
                                f"cascade needs {MIN_ANSWERED}"}
    candidates, described = [], []
    for p in range(len(NAMES)):
        rows = np.nonzero(found == p)[0]
        table = calibrate.table(models, frontier, expected[rows], est_costs[rows], scores[rows], costs[rows])
        annotated, guarded = annotate(table, models, frontier, expected[rows], est_costs[rows], scores[rows],
                                      costs[rows], folds[rows])
        part = router_candidates(annotated, frontier)
        if p == NAMES.index("answered"):
            part += cascade_candidates(np.nan_to_num(gain[rows]), answered[rows], scores[rows], costs[rows],
                                       models.index(frontier), models.index(cheap), folds[rows])
        candidates.append(part)
        described.append({"name": NAMES[p], "rows": len(rows), "unanswered": int((~answered[rows]).sum()),
                          "verdict": guarded["verdict"], "hull_served": guarded["hull_served"],
                          "route_points_kept": sum(c.kind == "route" for c in part),
                          "cascade_shares_kept": [round(c.share, 3) for c in part if c.kind == "cascade"]})
    weights = [float((found == p).mean()) for p in range(len(NAMES))]
    policy = PartPolicy(fit_detector(features, answered), 1.0, weights, candidates, combine(candidates, weights))
    for p, entry in enumerate(described):
        kinds = [policy.pick(r, p).kind for r in policy.table]
        entry["vertices_by_kind"] = {k: kinds.count(k) for k in ("single", "route", "cascade")}
    return policy, {**report, "built": True, "parts": described, "vertices": len(policy.table),
                    "uses_cascade": policy.uses_cascade()}
