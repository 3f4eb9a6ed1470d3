"""Mixed traffic (tokenomy.routing.parts): where only some training rows carry the cheap model's answer, the cascade
serves the part of the traffic like them and the router the rest, on one cost curve for the mix; in route train,
route eval and through the gateway."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

from tests.routing.conftest import hashed_embed
from tests.routing.test_no_harm import BIG_2, CHEAP_2, _checkable, _router, _write, auto_and_plain

from tokenomy.routing.evaluate import evaluate
from tokenomy.routing.parts import Candidate, combine
from tokenomy.routing.train import train

POEM = ["river", "mountain", "forest", "harbour", "meadow", "glacier", "desert", "island", "valley", "orchard"]


def _mix(n_train: int, n_test: int, seed: int = 3) -> list[dict[str, Any]]:
    """The checkable task (its rows carry the cheap model's answer, which shows when it is wrong) and as many rows
    of a second task that carry none: short poems, which the cheap model writes well 80 % of the time, the big
    one 90 %."""
    rows = _checkable(n_train, n_test, telling=True)
    rng = random.Random(seed)
    for i in range(n_train + n_test):
        prompt = f"write a short poem about the {rng.choice(POEM)} in the {rng.choice(POEM)} at dawn"
        outcomes = {CHEAP_2: {"score": float(rng.random() < 0.8), "cost_usd": 0.001},
                    BIG_2: {"score": float(rng.random() < 0.9), "cost_usd": 0.010}}
        rows.append({"id": f"poem/{i}", "prompt": prompt, "outcomes": outcomes,
                     "split": "train" if i < n_train else "test"})
    return rows


def test_the_mix_curve_is_the_best_sum_of_the_parts_at_every_price() -> None:
    """Each vertex of the mix's curve is, at its price λ of a dollar, the best candidate of each part; and no
    combination of candidates lies above the curve at its cost."""
    parts = [[Candidate("single", 0.3, 1.0, 0.0), Candidate("route", 0.6, 3.0, 0.4), Candidate("single", 0.7, 6.0, 1.0),
              Candidate("route", 0.4, 4.0, 0.5)],  # below the part's hull: never picked
             [Candidate("single", 0.5, 1.0, 0.0), Candidate("cascade", 0.8, 2.5, 0.3),
              Candidate("single", 0.85, 6.0, 1.0)]]
    weights = [0.25, 0.75]
    rows = combine(parts, weights)
    assert [r["picks"] for r in rows] == [[0, 0], [0, 1], [1, 1], [2, 1], [2, 2]]
    for lam in (1e-3, 0.05, 0.08, 0.2, 10.0):
        best = max(itertools.product(*[range(len(p)) for p in parts]),
                   key=lambda picks: sum(w * (parts[p][i].score - lam * parts[p][i].usd)
                                         for p, (w, i) in enumerate(zip(weights, picks, strict=True))))
        value = max(r["score"] - lam * r["usd_per_1k"] / 1000 for r in rows)
        assert abs(value - sum(w * (parts[p][i].score - lam * parts[p][i].usd)
                               for p, (w, i) in enumerate(zip(weights, best, strict=True)))) < 1e-12
    assert all(a["usd_per_1k"] < b["usd_per_1k"] and a["score"] < b["score"] for a, b in itertools.pairwise(rows))


def test_the_cascade_serves_its_part_of_a_mix(counter: Any, tmp_path: Path) -> None:
    mixed = _write(tmp_path / "mix.jsonl", _mix(500, 500))
    report = train([mixed], tmp_path / "r", embed=hashed_embed, counter=counter)
    parts = report["parts"]
    assert report["policy"] == "parts", parts
    assert parts["built"] and parts["detector_oof_balanced_accuracy"] >= 0.95
    other, answered = parts["parts"]
    assert answered["cascade_shares_kept"] and not other["cascade_shares_kept"]
    assert answered["vertices_by_kind"]["cascade"] > 0 and other["vertices_by_kind"]["cascade"] == 0

    router = _router(tmp_path / "r", counter)
    assert router.decide("alpha beta gamma question 7?").part == 1
    assert router.decide("write a short poem about the meadow in the island at dawn").part == 0
    result = evaluate(router, [mixed], bootstrap=20)
    auto, plain = result["summary"]["auto"], result["summary"]["router"]
    assert result["parts"]["rows_per_part"] == [500, 500]
    assert result["parts"]["answered_part_rows_without_answer"] == 0
    assert auto["harm"] <= 0.01 and auto["apgr"] > plain["apgr"] + 0.1  # escalating the wrong answers pays
    reach, plain_reach = auto["cost_to_best_usd"], plain["cost_to_best_usd"]
    assert reach is not None and (plain_reach is None or reach < plain_reach)


def test_no_parts_where_the_prompt_does_not_tell_them_apart(counter: Any, tmp_path: Path) -> None:
    """A fifth of the rows carry no cheap answer and look like the rest: the gateway could not tell which traffic
    the cascade was measured on, so it is not served."""
    rows = _checkable(500, 100, telling=True)
    for row in rows[:100]:
        del row["outcomes"][CHEAP_2]["response"]
    report = train([_write(tmp_path / "m.jsonl", rows)], tmp_path / "m", embed=hashed_embed, counter=counter)
    assert report["policy"] == "route" and report["parts"]["built"] is False
    assert report["parts"]["detector_oof_balanced_accuracy"] < 0.95


def test_policy_auto_serves_each_part_its_own_policy(counter: Any, tmp_path: Path) -> None:
    """Through the gateway: a prompt like the answered rows goes to the cascade (cheap model first), a poem to the
    router's choice for its part, and the reason names the part."""
    from tokenomy.embeddings.choice import load_embedder
    from tokenomy.routing.features import FeatureConfig

    mixed = _write(tmp_path / "mix.jsonl", _mix(400, 10))
    embedder = load_embedder("wordllama-l2-supercat")  # as served
    report = train([mixed], tmp_path / "r", embed=lambda texts: embedder.embed(texts).vectors, counter=counter,
                   base=FeatureConfig(embedder="wordllama-l2-supercat"), target="share=0.5")
    assert report["policy"] == "parts", report["parts"]
    with auto_and_plain(tmp_path / "r", tmp_path) as client:
        def ask(model: str, text: str) -> Any:
            return client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": text}])

        raw = ask("tokenomy/auto", "alpha beta gamma delta question 3?")
        reason = raw.headers["x-tokenomy-route-reason"]
        assert raw.headers["x-tokenomy-cascade"] in ("kept", "escalated"), reason
        assert "auto: part answered (2 of 2), the cascade at escalation share" in reason and reason.isascii()
        raw = ask("tokenomy/auto", "write a short poem about the river in the valley at dawn")
        reason = raw.headers["x-tokenomy-route-reason"]
        assert "x-tokenomy-cascade" not in raw.headers and "auto: part other (1 of 2)" in reason, reason
        raw = ask("tokenomy/plain", "alpha beta gamma delta question 3?")
        assert "x-tokenomy-cascade" not in raw.headers and "part" not in raw.headers["x-tokenomy-route-reason"]
