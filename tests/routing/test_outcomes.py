from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.routing.conftest import NIM

from tokenomy.errors import OutcomeDataError
from tokenomy.routing.costs import ASSUMED_OUTPUT_TOKENS, cost_matrix, resolve_prices
from tokenomy.routing.outcomes import ModelPrice, read_outcomes


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"id": "a", "prompt": "hi", "outcomes": {"m1": {"score": 1}, "m2": {"score": 0.5}}}


@pytest.mark.parametrize(("bad", "fragment"), [
    ("{not json", "not valid JSON"),
    ({"id": "b", "prompt": "x", "outcomes": {"m1": {"score": 1.5}}}, "'score' must be a number in [0, 1]"),
    ({"id": "b", "prompt": "x", "outcomes": {}}, "'outcomes' must be a non-empty object"),
    ({"id": "b", "outcomes": {"m1": {"score": 1}}}, "'prompt' must be a string"),
    ({"id": "b", "prompt": "x", "outcomes": {"m1": {"score": 1, "cost_usd": -1}}}, "'cost_usd' must be"),
    ({"id": "a", "prompt": "x", "outcomes": {"m1": {"score": 1}}}, "duplicate row id"),
])
def test_malformed_row_names_file_and_line(tmp_path: Path, bad: object, fragment: str) -> None:
    path = _write(tmp_path / "o.jsonl", [GOOD, bad])
    with pytest.raises(OutcomeDataError) as info:
        read_outcomes([path])
    assert f"{path}:2" in info.value.message
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_evaluation_rows_are_test_split_or_everything(tmp_path: Path) -> None:
    plain = read_outcomes([_write(tmp_path / "p.jsonl", [GOOD, {**GOOD, "id": "b"}])])
    assert [r.id for r in plain.evaluation_rows()] == ["a", "b"]
    assert len(plain.training_rows()) == 2
    split = read_outcomes([_write(tmp_path / "s.jsonl", [{**GOOD, "split": "train"}, {**GOOD, "id": "b",
                                                                                      "split": "test"}])])
    assert [r.id for r in split.evaluation_rows()] == ["b"]
    assert [r.id for r in split.training_rows()] == ["a"]


def test_sibling_price_file_and_costs_from_tokens(counter: object) -> None:
    data = read_outcomes([NIM])
    assert data.prices["gemma-2-9b-it"] == ModelPrice(0.1, 0.1)
    rows = data.rows[:3]
    models = ["gemma-2-9b-it", "llama3-chatqa-1.5-70b"]
    costs = cost_matrix(rows, models, resolve_prices(models, rows, data.prices), counter)  # type: ignore[arg-type]
    tokens = counter.count_text(rows[0].prompt, "gpt-4")  # type: ignore[attr-defined]
    assert costs[0, 0] == pytest.approx((tokens + ASSUMED_OUTPUT_TOKENS) * 0.1 / 1e6)
    assert costs[0, 1] == pytest.approx((tokens + ASSUMED_OUTPUT_TOKENS) * 0.9 / 1e6)


def test_row_cost_wins_and_unpriced_model_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", [{"id": "a", "prompt": "x", "outcomes": {
        "m1": {"score": 1, "cost_usd": 0.002}, "unknown-model-xyz": {"score": 0}}}])
    data = read_outcomes([path])
    with pytest.raises(OutcomeDataError, match=r"no cost for model 'unknown-model-xyz'.*--prices"):
        resolve_prices(["m1", "unknown-model-xyz"], data.rows, {})
    assert resolve_prices(["m1"], data.rows, {}) == {}
