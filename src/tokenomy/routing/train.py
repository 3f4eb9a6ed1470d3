"""``route train``: outcome rows in (split != test), router directory out.

Steps: read and validate rows; price every call; embed the prompts; pick the learner on out-of-fold predictions
(:mod:`tokenomy.routing.selection`), once per candidate embedder, and keep the embedder whose best learner
wins (:func:`pick_embedder`); refit it on every training row; calibrate λ on its out-of-fold predictions; fit the
cascade check when the cheapest model's answers are in the data; write the directory and the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenomy.errors import OutcomeDataError
from tokenomy.routing import calibrate, store
from tokenomy.routing import cascade as cascade_mod
from tokenomy.routing import guard as guard_mod
from tokenomy.routing import parts as parts_mod
from tokenomy.routing import quality as q
from tokenomy.routing.costs import ASSUMED_OUTPUT_TOKENS, cost_matrix, resolve_prices, score_matrix
from tokenomy.routing.features import Embed, FeatureConfig, featurize, fit_config
from tokenomy.routing.outcomes import ModelPrice, OutcomeRow, read_outcomes
from tokenomy.routing.selection import NESTED_MAX_ROWS, fold_of, nested_oof, select

if TYPE_CHECKING:
    import numpy as np

    from tokenomy.tokens.counter import TokenCounter

Progress = Callable[[str], None]


def train(paths: Sequence[Path], out: Path, *, embed: Embed, counter: TokenCounter,
          prices: dict[str, ModelPrice] | None = None, target: str = calibrate.DEFAULT_TARGET,
          base: FeatureConfig | None = None, rivals: Mapping[str, Embed] | None = None,
          progress: Progress = lambda _: None, no_harm: bool = True, current: str | None = None) -> dict[str, Any]:
    """Train a router on ``paths`` into ``out``; returns the training report (also written to ``out``).
    ``base`` sets the embedding window and names ``embed``'s embedder (default :class:`FeatureConfig`'s);
    ``rivals`` (embedder name → embed function) are measured against it on the same folds, and the router keeps
    the one :func:`pick_embedder` prefers. ``no_harm`` (default) keeps the learned rule only at the operating
    points where it beats the hull of single models out of fold (:mod:`tokenomy.routing.guard`); False serves the
    learned rule everywhere (for tests of its mechanics). ``current``: the model the team calls today; the guard
    serves it in place of the best model on the rows unless another beats it by more than the fold-to-fold noise."""
    import numpy as np

    started = time.monotonic()
    default_target = calibrate.parse_target(target)
    data = read_outcomes(paths)
    rows = data.training_rows()
    if len(rows) < 20:
        raise OutcomeDataError(f"only {len(rows)} training rows (split != test) in {', '.join(map(str, paths))}; "
                               "a router needs at least 20")
    models = list(dict.fromkeys(m for r in rows for m in r.outcomes))
    if len(models) < 2:
        raise OutcomeDataError(f"the training rows name only {models}: routing needs at least two models")
    if current is not None and current not in models:
        raise OutcomeDataError(f"--current {current!r} is not a model of the training rows (they name "
                               f"{', '.join(models)})")
    priced = resolve_prices(models, rows, {**data.prices, **(prices or {})})
    scores = score_matrix(rows, models)
    costs = cost_matrix(rows, models, priced, counter)
    tokens = np.array([counter.count_text(r.prompt, "gpt-4") for r in rows], dtype=np.float64)
    cost_model = fit_cost_model(tokens, costs, models)
    est_costs = np.maximum(np.array([cost_model[m] for m in models])[:, 0][None, :]
                           + tokens[:, None] * np.array([cost_model[m] for m in models])[:, 1][None, :], 0.0)

    config = fit_config([r.prompt for r in rows], [r.group for r in rows], base or FeatureConfig())
    progress(f"embedding {len(rows)} training prompts ({config.embedder})")
    features = featurize(config, [r.prompt for r in rows], [r.group for r in rows], embed)
    groups = len(config.groups)
    embedded_at = time.monotonic()

    ids = [r.id for r in rows]
    candidates = {config.embedder: (features, select(features, scores, est_costs, costs, groups, ids, models,
                                                     progress), embed)}
    for name, rival_embed in (rivals or {}).items():
        progress(f"embedding {len(rows)} training prompts ({name})")
        vectors = np.asarray(rival_embed([config.window(r.prompt) for r in rows]), dtype=np.float32)
        rival_features = replace(features, embedding=vectors)
        candidates[name] = (rival_features, select(rival_features, scores, est_costs, costs, groups, ids, models,
                                                   progress), rival_embed)
    measured = {name: chosen.merit for name, (_, chosen, _) in candidates.items()}
    config = replace(config, embedder=pick_embedder(measured))
    features, chosen, embed = candidates[config.embedder]
    if len(measured) > 1:
        progress(f"embedder {config.embedder} (out-of-fold merit "
                 + ", ".join(f"{n} {v:.4f}" for n, v in measured.items()) + ")")
    progress(f"refitting {chosen.method} on all training rows")
    model = q.QualityModel.fit(features, scores, groups, chosen.hyper, chosen.blend)

    means = np.nanmean(scores, axis=0)
    mean_costs = np.nanmean(costs, axis=0)
    frontier = models[max(range(len(models)), key=lambda j: (means[j], -mean_costs[j]))]
    cheapest = models[min(range(len(models)), key=lambda j: (mean_costs[j], -means[j]))]
    complete = ~np.isnan(scores).any(axis=1)
    table = calibrate.table(models, frontier, chosen.oof[complete], est_costs[complete], scores[complete],
                            costs[complete])
    no_harm_report: dict[str, Any] = {"guard": False}
    measured_on = chosen.oof
    if no_harm:
        progress("measuring the learned rule against the hull of single models")
        honest = "the chosen learner's out-of-fold predictions"
        if len(rows) <= NESTED_MAX_ROWS:  # small data: the winner's own out-of-fold merit flatters it
            measured_on = nested_oof(features, scores, est_costs, costs, groups, ids, models, progress)
            honest = "nested out-of-fold predictions (the learner selected without the held-out fold)"
        table, no_harm_report = guard_mod.annotate(table, models, frontier, measured_on[complete],
                                                   est_costs[complete], scores[complete], costs[complete],
                                                   fold_of(ids)[complete], current)
        no_harm_report = {"guard": True, "measured_on": honest, **no_harm_report}
    frontier_score = float(means[models.index(frontier)])

    progress("cascade check")
    measured_frontier = measured_on[:, models.index(frontier)]
    check, cascade_report, gain = _fit_cascade(rows, models, cheapest, frontier, features, scores, config,
                                               chosen.hyper, embed, groups, measured_frontier, costs,
                                               table if no_harm else None)
    policy = "cascade" if any(v["wins"] for v in cascade_report.get("verdicts", [])) else "route"
    parts, parts_report = None, {"built": False, "reason": "every training row, or none, carries a cheap answer"}
    if no_harm and gain is not None and np.isnan(gain).any() and complete.all():  # a mix: only some rows answered
        progress("per-part policy (the cascade where its rows are, the router elsewhere)")
        parts, parts_report = parts_mod.build(features, ~np.isnan(gain), gain, fold_of(ids), models, frontier,
                                              cheapest, measured_on, est_costs, scores, costs)
        if parts is not None and parts.uses_cascade():
            policy = "parts"
    manifest = {
        "models": models, "frontier": frontier, "cheapest": cheapest, "frontier_score": frontier_score,
        "prices": {m: asdict(p) for m, p in priced.items()}, "cost_model": cost_model,
        "assumed_output_tokens": ASSUMED_OUTPUT_TOKENS, "method": chosen.method, "default_target": str(default_target),
        "cascade": None if check is None else {"cheap": cheapest, "frontier": frontier, "hyper": vars(check.hyper),
                                               "answer_flags": list(check.flags),
                                               "gain_quantiles": cascade_report["gain_quantiles"],
                                               "verdicts": cascade_report.get("verdicts", [])},
        "policy": policy, "parts": None if parts is None else parts.to_json(),
        "trained_on": [str(p) for p in paths], "training_rows": len(rows), "current": current}
    report = {
        "rows": len(rows), "models": models, "frontier": frontier, "cheapest": cheapest, "groups": groups,
        "mean_score": {m: float(means[j]) for j, m in enumerate(models)},
        "mean_cost_usd": {m: float(mean_costs[j]) for j, m in enumerate(models)},
        "cost_source": _cost_source(rows, models), "assumed_output_tokens": ASSUMED_OUTPUT_TOKENS,
        "method": chosen.method, "hyper": vars(chosen.hyper), "selection": chosen.table,
        "embedder": config.embedder, "embedders": _embedder_report(measured),
        "default_target": str(default_target),
        "default_target_oof": _at(table, calibrate.solve(default_target, table, frontier_score)),
        "no_harm": no_harm_report,
        "cascade": cascade_report, "parts": parts_report, "policy": policy,
        "seconds": {"embedding": round(embedded_at - started, 1), "total": round(time.monotonic() - started, 1)}}
    store.save(out, store.RouterState(manifest, config, model, table, check, parts), report)
    return report


def pick_embedder(merits: Mapping[str, float]) -> str:
    """The embedder whose best learner has the highest out-of-fold merit; a tie goes to the faster one. Quality
    first, as for every other choice here: a margin in favour of the faster embedder (0.002) was tried and dropped
    (docs/routing.md, "Embedder choice")."""
    from tokenomy.embeddings.choice import SPEED_RANK

    return max(merits, key=lambda name: (merits[name], -SPEED_RANK.get(name, len(SPEED_RANK))))


def _embedder_report(merits: Mapping[str, float]) -> dict[str, Any]:
    return {"oof_apgr_cost": dict(merits), "chosen": pick_embedder(merits)}


def fit_cost_model(tokens: np.ndarray, costs: np.ndarray, models: Sequence[str]) -> dict[str, list[float]]:
    """Per model, ``[intercept_usd, usd_per_prompt_token]`` by least squares (exact for prices × tokens with a
    fixed output length; the mean response length is folded into the intercept)."""
    import numpy as np

    fitted: dict[str, list[float]] = {}
    for j, model in enumerate(models):
        ok = ~np.isnan(costs[:, j])
        x = np.column_stack([np.ones(ok.sum()), tokens[ok]])
        coef = np.linalg.lstsq(x, costs[ok, j], rcond=None)[0]
        if coef[1] < 0:  # cost must not fall with prompt length
            coef = np.array([costs[ok, j].mean(), 0.0])
        fitted[model] = [float(coef[0]), float(coef[1])]
    return fitted


def _cost_source(rows: Sequence[OutcomeRow], models: Sequence[str]) -> str:
    given = sum(1 for r in rows for m in models if m in r.outcomes and r.outcomes[m].cost_usd is not None)
    total = sum(1 for r in rows for m in models if m in r.outcomes)
    if given == total:
        return "cost_usd per outcome"
    return f"prices × tokens for {total - given} of {total} calls (output tokens from the response, else " \
           f"{ASSUMED_OUTPUT_TOKENS})"


def _at(table: list[dict[str, Any]], at: calibrate.OperatingPoint) -> dict[str, Any]:
    return next(row for row in table if at.matches(row))


def _fit_cascade(rows: Sequence[OutcomeRow], models: Sequence[str], cheapest: str, frontier: str, features: Any,
                 scores: np.ndarray, config: FeatureConfig, hyper: q.Hyper, embed: Embed, groups: int,
                 frontier_oof: np.ndarray, costs: np.ndarray,
                 table: list[dict[str, Any]] | None
                 ) -> tuple[cascade_mod.CascadeCheck | None, dict[str, Any], np.ndarray | None]:
    """The cascade check, its out-of-fold curve, and (``table``: the router's annotated calibration, the guard on)
    the escalation shares where the cascade is served in place of the router (:func:`guard.cascade_verdicts`);
    and the out-of-fold expected gain of every training row (NaN where it carries no cheap answer)."""
    import numpy as np

    usable = np.array([bool(r.outcomes.get(cheapest) and r.outcomes[cheapest].response) for r in rows])
    if usable.sum() < cascade_mod.MIN_ROWS:
        return None, {"trained": False, "reason": f"{int(usable.sum())} training rows carry a {cheapest} response; "
                      f"the cascade check needs {cascade_mod.MIN_ROWS}"}, None
    index = [int(i) for i in np.nonzero(usable)[0]]
    answers = [rows[i].outcomes[cheapest].response or "" for i in index]
    answer_x = cascade_mod.answer_features(config, answers, embed)
    prompt = features.take(index)
    cheap_scores = scores[index, models.index(cheapest)]
    check_hyper = q.Hyper(alpha=hyper.alpha, embedding_weight=hyper.embedding_weight)
    oof = cascade_mod.oof_predictions(prompt, answer_x, cheap_scores, groups, fold_of([rows[i].id for i in index]),
                                      check_hyper)
    check = cascade_mod.CascadeCheck.fit(cheapest, frontier, prompt, answer_x, cheap_scores, groups, check_hyper)
    pair = [models.index(frontier), models.index(cheapest)]
    gain = frontier_oof[index] - oof
    every_gain = np.full(len(rows), np.nan)
    every_gain[index] = gain
    curve = cascade_mod.oof_apgr(gain, scores[np.ix_(index, pair)], costs[np.ix_(index, pair)])
    verdicts: list[dict[str, Any]] = []
    complete = ~np.isnan(scores[index]).any(axis=1)
    # chosen for the traffic only when measured on all of it: rows without a cheap answer (another task in a mix)
    # would be served the cascade on evidence from the others
    if table is not None and complete.all() and usable.all():
        verdicts = guard_mod.cascade_verdicts(gain, scores[index], costs[index], pair[0], pair[1],
                                              fold_of([rows[i].id for i in index]), table)
    return check, {"trained": True, "verdicts": verdicts,
                   "served_at_shares": [round(v["share"], 3) for v in verdicts if v["wins"]],
                   "rows": len(index), "cheap": cheapest, "frontier": frontier,
                   "oof_mse": float(np.mean((oof - cheap_scores) ** 2)),
                   "oof_mse_constant": float(np.var(cheap_scores)), **curve,
                   "gain_quantiles": cascade_mod.gain_quantiles(gain)}, every_gain
