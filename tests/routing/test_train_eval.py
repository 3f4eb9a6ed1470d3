"""Train and evaluate on the shipped fixtures with a stand-in embedder: the router directory, the sweep, the
decisions file (recomputed from the data alone), calibration."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from tests.routing.conftest import GSM8K, NIM, ROUTELLM_PRICES, hashed_embed

from tokenomy.routing import store
from tokenomy.routing.evaluate import POINTS, evaluate
from tokenomy.routing.outcomes import read_outcomes, read_prices
from tokenomy.routing.router import Router
from tokenomy.routing.train import train


class _HashedEmbedder:
    dimensions = 64

    def embed(self, texts: list[str]) -> Any:
        class Result:
            vectors = hashed_embed(texts)

        return Result()


@pytest.fixture(scope="module")
def nim_router(tmp_path_factory: pytest.TempPathFactory, counter: Any) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("nim-router")
    # the guard off: these tests exercise the learned rule's operating points (test_no_harm.py tests the guard)
    report = train([NIM], out, embed=hashed_embed, counter=counter, target="share=0.3", no_harm=False)
    return out, report


def _router(directory: Path, counter: Any) -> Router:
    return Router(store.load(directory), _HashedEmbedder(), counter)  # type: ignore[arg-type]


def test_router_directory_is_self_contained(nim_router: tuple[Path, dict[str, Any]]) -> None:
    out, report = nim_router
    assert sorted(p.name for p in out.iterdir()) == ["calibration.json", "manifest.json", "report.json",
                                                      "weights.npz"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["models"]) == 9 and manifest["prices"]["gemma-2-9b-it"]["input_usd_per_mtok"] == 0.1
    assert manifest["default_target"] == "share=0.3"
    assert report["rows"] == 240  # the 120 test rows are never read for training
    assert report["cascade"]["trained"] is False  # no responses in this file
    assert {entry["method"] for entry in report["selection"]} >= {"ridge", "knn", "words", "blend:ridge",
                                                                   "blend:blend shared", "blend:blend per model",
                                                                   "blend:blend average"}


def test_decisions_recompute_every_point(nim_router: tuple[Path, dict[str, Any]], counter: Any,
                                         tmp_path: Path) -> None:
    out, _ = nim_router
    decisions = tmp_path / "decisions.jsonl"
    result = evaluate(_router(out, counter), [NIM], decisions=decisions)
    lines = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert result["rows"] == 120 and len(lines) == POINTS * 120
    rows = {r.id: r for r in read_outcomes([NIM]).evaluation_rows()}
    by_point: dict[int, list[float]] = defaultdict(list)
    for line in lines:
        by_point[line["point"]].append(rows[line["id"]].outcomes[line["model"]].score)
    reported = result["points"]["router"]
    assert [sum(v) / len(v) for _, v in sorted(by_point.items())] == pytest.approx([p["score"] for p in reported])
    costs = [p["cost_usd"] for p in reported]
    assert costs[0] == pytest.approx(min(result["summary"][f"single:{m}"]["cost_usd"] for m in result["models"]))
    assert costs == sorted(costs) or max(a - b for a, b in itertools.pairwise(costs)) < 1e-9
    summary = result["summary"]
    assert summary["random"]["apgr"] == pytest.approx(0.5)
    assert summary["oracle"]["apgr"] > summary["router"]["apgr"]
    assert summary["oracle"]["apgr"] > 1.0
    assert set(summary) >= {"router", "random", "prompt_length", "zero_router", "oracle"}


def test_calibration_reports_target_and_realised(nim_router: tuple[Path, dict[str, Any]], counter: Any) -> None:
    out, _ = nim_router
    result = evaluate(_router(out, counter), [NIM], targets=["share=0.0", "budget=0.05"])
    by_target = {c["target"]: c for c in result["calibration"]}
    assert set(by_target) == {"share=0.3", "share=0", "budget=0.05"}
    assert by_target["share=0"]["realised"] == 0.0
    assert by_target["share=0.3"]["training_oof"]["share"] <= 0.3 + 1e-9
    assert 0.0 <= by_target["share=0.3"]["realised"] <= 0.6
    # a share target prices frontier calls (μ); a budget target prices dollars (λ)
    assert by_target["share=0.3"]["lambda"] == 0.0 and by_target["share=0.3"]["mu"] != 0.0
    assert by_target["budget=0.05"]["mu"] == 0.0 and by_target["budget=0.05"]["lambda"] > 0.0


def test_cascade_on_gsm8k_pays_cheap_call(tmp_path: Path, counter: Any) -> None:
    prices = read_prices(ROUTELLM_PRICES)
    report = train([GSM8K], tmp_path / "r", embed=hashed_embed, counter=counter, prices=prices)
    assert report["cascade"]["trained"] is True and report["cascade"]["rows"] == 160
    assert 0.0 < report["cascade"]["oof_apgr"] < 2.0
    result = evaluate(_router(tmp_path / "r", counter), [GSM8K], prices=prices)
    cascade = result["points"]["cascade"]
    cheap = result["summary"]["single:mixtral-8x7b-instruct-v0.1"]
    strong = result["summary"]["single:gpt-4-1106-preview"]
    assert cascade[0]["cost_usd"] == pytest.approx(cheap["cost_usd"])
    assert cascade[-1]["cost_usd"] == pytest.approx(cheap["cost_usd"] + strong["cost_usd"])
    assert cascade[-1]["score"] == pytest.approx(strong["score"])
    assert result["reference"]["share_axis"] is True


def test_decide_returns_a_model_and_reason(nim_router: tuple[Path, dict[str, Any]], counter: Any) -> None:
    out, _ = nim_router
    router = _router(out, counter)
    cheap = router.decide("Write a haiku about routers.", target="budget=0")
    assert cheap.model == router.state.manifest["cheapest"]
    assert set(cheap.expected_scores) == set(router.models)
    assert "budget=0" in cheap.reason
    spend = router.decide("Write a haiku about routers.", target="quality=1.5")
    assert spend.expected_scores[spend.model] >= cheap.expected_scores[cheap.model]


def test_router_of_an_older_format_asks_for_retraining(nim_router: tuple[Path, dict[str, Any]],
                                                       tmp_path: Path) -> None:
    import shutil

    from tokenomy.errors import RouterFileError

    old = tmp_path / "old"
    shutil.copytree(nim_router[0], old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "format": "tokenomy-router/1"}))
    with pytest.raises(RouterFileError, match="retrain it"):
        store.load(old)


def test_answer_flags_and_escalation_by_gain() -> None:
    import math

    import numpy as np

    from tokenomy.routing.cascade import FIRST_FLAGS, answer_flags, escalations

    assert answer_flags("3 x 4 = 12, so the answer is 12") == [1.0, 1.0, 0.0, 0.0, math.log(2), 0.0]
    assert answer_flags("3 x 4 = 13, so the answer is 13") == [1.0, 1.0, 0.0, 0.0, math.log(2), math.log(2)]
    assert answer_flags("#### 42\n", FIRST_FLAGS) == [1.0, 1.0, 0.0]  # what routers trained before read
    assert answer_flags("I'm not sure there is enough information.", FIRST_FLAGS) == [0.0, 0.0, 1.0]
    masks = escalations(np.array([0.1, 0.5, -0.2]), 4)  # largest expected gain escalates first
    assert [m.tolist() for m in masks] == [[False, False, False], [False, True, False], [True, True, False],
                                           [True, True, True]]


def test_the_embedder_that_routes_better_out_of_fold_is_kept_ties_to_the_faster() -> None:
    from tokenomy.routing.train import pick_embedder

    minilm, wordllama = "all-minilm-l6-v2", "wordllama-l2-supercat"
    assert pick_embedder({minilm: 0.6691, wordllama: 0.6695}) == wordllama
    assert pick_embedder({minilm: 1.1589, wordllama: 1.1576}) == minilm
    assert pick_embedder({minilm: 0.64, wordllama: 0.64}) == wordllama  # a tie: the faster
    assert pick_embedder({minilm: 0.60, "some-new-embedder": 0.60}) == minilm  # an unranked name counts as slowest
    assert pick_embedder({minilm: 0.60, "some-new-embedder": 0.70}) == "some-new-embedder"


def test_training_keeps_the_embedder_that_routes_better(tmp_path: Path, counter: Any) -> None:
    """A rival embedder is measured on the same folds; the router is built on the winner's vectors."""
    import numpy as np

    from tokenomy.routing.train import pick_embedder

    def blank(texts: list[str]) -> Any:  # no information: every prompt the same vector
        out = np.zeros((len(texts), 16), dtype=np.float32)
        out[:, 0] = 1.0
        return out

    # "all-minilm-l6-v2" names the informative embedder here, the blank one is the fast rival
    report = train([NIM], tmp_path / "r", embed=hashed_embed, counter=counter,
                   rivals={"wordllama-l2-supercat": blank})
    merits = report["embedders"]["oof_apgr_cost"]
    assert set(merits) == {"all-minilm-l6-v2", "wordllama-l2-supercat"}
    assert report["embedder"] == report["embedders"]["chosen"] == pick_embedder(merits)
    state = store.load(tmp_path / "r")
    assert state.features.embedder == report["embedder"]
    dims = {"all-minilm-l6-v2": 64, "wordllama-l2-supercat": 16}[report["embedder"]]
    assert state.quality.bank.shape[1] == dims  # the kept learner was fitted on that embedder's vectors
