"""Outcome rows (``shared/data/README.md``): per prompt, which models answered well, at what cost.

``read_outcomes(paths)`` parses and validates every line; a malformed row raises :class:`OutcomeDataError` naming
the file and the 1-based line number. Prices for rows without ``cost_usd`` come from a sibling ``NAME.models.json``
(``input_usd_per_mtok`` / ``output_usd_per_mtok`` per model), from a price file the caller passes, or from the
project's price catalogue, in that order (see :mod:`tokenomy.routing.costs`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenomy.errors import OutcomeDataError
from tokenomy.jsonl import json_objects

PRICE_SUFFIX = ".models.json"



@dataclass(frozen=True, slots=True)
class Outcome:
    score: float
    cost_usd: float | None = None
    response: str | None = None


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    id: str
    prompt: str
    outcomes: dict[str, Outcome]
    group: str | None = None
    split: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass
class OutcomeSet:
    """Rows from one or more files, plus the prices their sibling ``.models.json`` files carry."""

    rows: list[OutcomeRow]
    prices: dict[str, ModelPrice] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Every model that appears in any row, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            for name in row.outcomes:
                seen.setdefault(name, None)
        return list(seen)

    def training_rows(self) -> list[OutcomeRow]:
        return [row for row in self.rows if row.split != "test"]

    def evaluation_rows(self) -> list[OutcomeRow]:
        """Rows whose split is ``test``; every row when no row has a split."""
        if all(row.split is None for row in self.rows):
            return list(self.rows)
        return [row for row in self.rows if row.split == "test"]


def read_outcomes(paths: Sequence[Path]) -> OutcomeSet:
    rows: list[OutcomeRow] = []
    prices: dict[str, ModelPrice] = {}
    for path in paths:
        sibling = price_file_for(path)
        if sibling.is_file():
            prices.update(read_prices(sibling))
        rows.extend(_read_file(path))
    if not rows:
        raise OutcomeDataError(f"no outcome rows in {', '.join(str(p) for p in paths)}")
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise OutcomeDataError(f"{row.source}: duplicate row id {row.id!r}")
        seen.add(row.id)
    return OutcomeSet(rows=rows, prices=prices)


def price_file_for(path: Path) -> Path:
    """``data/foo.jsonl`` → ``data/foo.models.json``."""
    return path.with_name(path.name.removesuffix(".jsonl") + PRICE_SUFFIX)


def read_prices(path: Path) -> dict[str, ModelPrice]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutcomeDataError(f"{path}: cannot read the price file ({exc})") from exc
    if not isinstance(document, dict):
        raise OutcomeDataError(f"{path}: expected an object mapping model -> prices")
    prices: dict[str, ModelPrice] = {}
    for model, entry in document.items():
        if not isinstance(entry, dict):
            raise OutcomeDataError(f"{path}: model {model!r}: expected an object with input/output prices")
        values: list[Any] = [entry.get(key) for key in ("input_usd_per_mtok", "output_usd_per_mtok")]
        if not all(_is_number(v) and v >= 0 for v in values):
            raise OutcomeDataError(f"{path}: model {model!r}: input_usd_per_mtok and output_usd_per_mtok must be "
                                   f"non-negative numbers, got {values}")
        prices[str(model)] = ModelPrice(float(values[0]), float(values[1]))
    return prices


def _read_file(path: Path) -> Iterable[OutcomeRow]:
    for where, data in json_objects(path, OutcomeDataError, "outcomes file"):
        yield _parse_row(data, where)


def _parse_row(data: dict[str, Any], where: str) -> OutcomeRow:
    row_id, prompt = data.get("id"), data.get("prompt")
    if not isinstance(row_id, str | int) or isinstance(row_id, bool) or row_id == "":
        raise OutcomeDataError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(prompt, str):
        raise OutcomeDataError(f"{where}: 'prompt' must be a string")
    for key in ("group", "split"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise OutcomeDataError(f"{where}: {key!r} must be a string when present")
    raw = data.get("outcomes")
    if not isinstance(raw, dict) or not raw:
        raise OutcomeDataError(f"{where}: 'outcomes' must be a non-empty object mapping model -> outcome")
    outcomes = {str(model): _parse_outcome(value, f"{where}: outcome {model!r}") for model, value in raw.items()}
    return OutcomeRow(id=str(row_id), prompt=prompt, outcomes=outcomes, group=data.get("group"),
                      split=data.get("split"), source=where)


def _parse_outcome(value: Any, where: str) -> Outcome:
    if not isinstance(value, dict):
        raise OutcomeDataError(f"{where}: expected an object with 'score'")
    score: Any = value.get("score")
    cost: Any = value.get("cost_usd")
    response: Any = value.get("response")
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        raise OutcomeDataError(f"{where}: 'score' must be a number in [0, 1], got {score!r}")
    if cost is not None and (not _is_number(cost) or cost < 0):
        raise OutcomeDataError(f"{where}: 'cost_usd' must be a non-negative number, got {cost!r}")
    if response is not None and not isinstance(response, str):
        raise OutcomeDataError(f"{where}: 'response' must be a string when present")
    return Outcome(score=float(score), cost_usd=None if cost is None else float(cost), response=response)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
