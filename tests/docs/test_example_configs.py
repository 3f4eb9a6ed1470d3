"""The commented configs in examples/ pass `tokenomy config check` as a user runs it (keys set, stores not
contacted), and each says how to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.docs.blocks import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_the_three_shapes_are_there() -> None:
    assert {p.stem for p in EXAMPLES} >= {"embedded", "team", "scale-out"}


@pytest.mark.parametrize("config", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_passes_config_check(config: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TOKENOMY_HOME": str(tmp_path / "home"),
           "OPENAI_API_KEY": "sk-example", "TOKENOMY_MASTER_KEY": "example-master"}
    done = subprocess.run([sys.executable, "-m", "tokenomy", "config", "check", "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not even a warning
    text = config.read_text()
    assert f"tokenomy config check --config examples/{config.name}" in text  # it says how to check it
    assert sum(line.lstrip().startswith("#") or " # " in line for line in text.splitlines()) >= 8  # commented
