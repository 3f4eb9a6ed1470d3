from __future__ import annotations

import pytest

from tokenomy.errors import TargetError
from tokenomy.routing.calibrate import Target, parse_target, solve

TABLE = [  # cheapest first, as the trainer writes it
    {"lambda": 100.0, "share": 0.0, "score": 0.60, "usd_per_1k": 0.1},
    {"lambda": 10.0, "share": 0.25, "score": 0.70, "usd_per_1k": 1.0},
    {"lambda": 1.0, "share": 0.50, "score": 0.78, "usd_per_1k": 2.0},
    {"lambda": 0.0, "share": 0.90, "score": 0.80, "usd_per_1k": 3.5},
]


def test_parse_target() -> None:
    assert parse_target("share=0.3") == Target("share", 0.3)
    assert str(parse_target(" Quality=0.95")) == "quality=0.95"
    for bad in ("share", "speed=1", "share=abc", "share=1.5", "budget=-1"):
        with pytest.raises(TargetError):
            parse_target(bad)


@pytest.mark.parametrize(("target", "lam"), [
    ("share=0.3", 10.0), ("share=0.5", 1.0), ("share=0", 100.0),
    ("quality=0.95", 1.0),  # 0.95 × 0.8 = 0.76: the cheapest row reaching it
    ("quality=1.2", 0.0),  # unreachable: the best row
    ("budget=2.5", 1.0), ("budget=0.05", 100.0),
])
def test_solve(target: str, lam: float) -> None:
    assert solve(parse_target(target), TABLE, frontier_score=0.8) == lam
