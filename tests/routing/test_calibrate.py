from __future__ import annotations

import pytest

from tokenomy.errors import TargetError
from tokenomy.routing.calibrate import OperatingPoint, Target, parse_target, solve

TABLE = [  # λ rows then μ rows, each cheapest first, as the trainer writes them
    {"kind": "lambda", "lambda": 100.0, "mu": 0.0, "share": 0.0, "score": 0.60, "usd_per_1k": 0.1},
    {"kind": "lambda", "lambda": 10.0, "mu": 0.0, "share": 0.25, "score": 0.70, "usd_per_1k": 1.0},
    {"kind": "lambda", "lambda": 1.0, "mu": 0.0, "share": 0.50, "score": 0.78, "usd_per_1k": 2.0},
    {"kind": "lambda", "lambda": 0.0, "mu": 0.0, "share": 0.90, "score": 0.80, "usd_per_1k": 3.5},
    {"kind": "mu", "lambda": 0.0, "mu": 2.0, "share": 0.0, "score": 0.60, "usd_per_1k": 0.1},
    {"kind": "mu", "lambda": 0.0, "mu": 0.2, "share": 0.28, "score": 0.73, "usd_per_1k": 1.2},
    {"kind": "mu", "lambda": 0.0, "mu": 0.05, "share": 0.5, "score": 0.79, "usd_per_1k": 2.1},
    {"kind": "mu", "lambda": 0.0, "mu": -2.0, "share": 1.0, "score": 0.80, "usd_per_1k": 3.9},
]


def test_parse_target() -> None:
    assert parse_target("share=0.3") == Target("share", 0.3)
    assert str(parse_target(" Quality=0.95")) == "quality=0.95"
    for bad in ("share", "speed=1", "share=abc", "share=1.5", "budget=-1"):
        with pytest.raises(TargetError):
            parse_target(bad)


@pytest.mark.parametrize(("target", "point"), [
    # share targets read the μ rows (price of a frontier call): the best score within the share
    ("share=0.3", OperatingPoint(0.0, 0.2)), ("share=0.5", OperatingPoint(0.0, 0.05)),
    ("share=0", OperatingPoint(0.0, 2.0)),
    # quality and budget targets read the λ rows (price of a dollar)
    ("quality=0.95", OperatingPoint(1.0)),  # 0.95 × 0.8 = 0.76: the cheapest row reaching it
    ("quality=1.2", OperatingPoint(0.0)),  # unreachable: the best row
    ("budget=2.5", OperatingPoint(1.0)), ("budget=0.05", OperatingPoint(100.0)),
])
def test_solve(target: str, point: OperatingPoint) -> None:
    assert solve(parse_target(target), TABLE, frontier_score=0.8) == point
