from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep every test (and every gateway a test starts: its ledger, onnxruntime's telemetry file) off the user's home.
os.environ["HOME"] = tempfile.mkdtemp(prefix="tokenomy-test-home-")
os.environ.pop("XDG_DATA_HOME", None)
os.environ.pop("TOKENOMY_DATABASE_URL", None)
os.environ.pop("TOKENOMY_HOME", None)

sys.path.insert(0, str(Path(__file__).parent))

from servers import run_fault_upstream
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="session")
def fault() -> Iterator[tuple[str, FaultUpstream]]:
    with run_fault_upstream() as pair:
        yield pair
