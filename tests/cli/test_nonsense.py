"""Never a silent success on nonsense (issue 23): an unknown model, an empty input, a date in the past or the
future each get a one-line error that says what to do, and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TOKENOMY_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "tokenomy", *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_audit_small_model_must_be_priced(tmp_path: Path) -> None:
    line = _one_error(_run(tmp_path, "audit", "--demo", "--no-semantic", "--small-model", "nope-model"))
    assert "--small-model 'nope-model' has no price in the catalogue" in line and "tokenomy prices" in line


def test_cache_simulate_refuses_unknown_model_and_empty_log(tmp_path: Path) -> None:
    line = _one_error(_run(tmp_path, "cache", "simulate", "--demo", "--model", "nope"))
    assert "--model 'nope' has no price in the catalogue" in line
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "no requests to replay" in _one_error(_run(tmp_path, "cache", "simulate", str(empty)))


def test_cache_simulate_reads_imported_prices(tmp_path: Path) -> None:
    # a model known only from `prices import` is priced by the simulator too
    litellm = tmp_path / "litellm.json"
    litellm.write_text(json.dumps({"my-claude": {
        "litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06}}))
    assert _run(tmp_path, "prices", "import", str(litellm)).returncode == 0
    # imported today, it was not in force on the demo's dates (2025-11-24): nothing could be billed
    line = _one_error(_run(tmp_path, "cache", "simulate", "--demo", "--model", "my-claude"))
    assert "120 of 120 requests are dated before the first price of my-claude" in line and "--effective-from" in line
    imported = _run(tmp_path, "prices", "import", str(litellm), "--effective-from", "2025-01-01")
    assert imported.returncode == 0, imported.stderr
    done = _run(tmp_path, "cache", "simulate", "--demo", "--model", "my-claude", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"] == "my-claude" and float(report["unshaped"]["cost_usd"]) > 0


def test_keys_refuse_a_past_expiry_and_a_name_in_use(tmp_path: Path) -> None:
    line = _one_error(_run(tmp_path, "keys", "create", "--name", "old", "--expires", "2020-01-01"))
    assert "expires 2020-01-01T00:00:00+00:00 is in the past" in line and "keys revoke" in line
    assert _run(tmp_path, "keys", "create", "--name", "alice").returncode == 0
    line = _one_error(_run(tmp_path, "keys", "create", "--name", "alice"))
    assert "a key named 'alice' exists" in line
    assert _run(tmp_path, "keys", "revoke", "alice").returncode == 0
    # once revoked, the name is free again, and it names the key in use
    assert _run(tmp_path, "keys", "create", "--name", "alice").returncode == 0
    revoked = _run(tmp_path, "keys", "revoke", "alice", "--json")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"


@pytest.mark.parametrize("since", ["2999-01-01", "2999-01-01T10:00:00"])
def test_spend_since_the_future_is_an_error(tmp_path: Path, since: str) -> None:
    line = _one_error(_run(tmp_path, "spend", "--since", since))
    assert f"--since '{since}' is in the future" in line and "24h" in line


def test_prices_before_the_catalogue_is_an_error(tmp_path: Path) -> None:
    line = _one_error(_run(tmp_path, "prices", "--at", "1990-01-01"))
    assert "no model has a price in force on 1990-01-01: the catalogue's first dated prices are from" in line


def test_keys_output_shows_no_python_reprs(tmp_path: Path) -> None:
    team = _run(tmp_path, "keys", "team", "research", "--budget-usd", "10")
    assert team.returncode == 0 and team.stdout.strip() == "team research: $10 total, no rate limits"
    line = _one_error(_run(tmp_path, "keys", "create", "--name", "neg", "--budget-usd", "-5"))
    assert line.endswith("budget_usd must be a non-negative amount (got -5)")  # not Decimal('-5')
