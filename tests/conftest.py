from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import run_fault_upstream
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="session")
def fault() -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as pair:
        yield pair


@pytest.fixture(autouse=True)
def _quiet_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime and friends write under $HOME; keep tests off the user's home."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))
