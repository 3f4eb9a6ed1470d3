"""``tokenomy keys`` against the local data dir and, with ``--url``, against running replicas: a key revoked on one
replica is refused by every replica within 5 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.control.parts import MASTER, admin, priced, replicas, serve_config

from tokenomy.cli.main import cli
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKENOMY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_one_json_object_whose_key_field_is_the_key(home: Path) -> None:
    code, out, _ = _run("keys", "create", "--name", "ci", "--team", "infra", "--budget-usd", "12.5", "--period",
                        "monthly", "--rpm", "60", "--tpm", "10000", "--models", "gpt-4o-mini,small",
                        "--expires", "2030-01-01", "--tag", "cost_centre=cc-7", "--json")
    assert code == 0, out
    created = json.loads(out)
    assert created["key"].startswith("tk-") and len(created["key"]) >= 46
    assert (created["name"], created["team"], created["budget_usd"], created["period"]) == ("ci", "infra", "12.5",
                                                                                           "monthly")
    assert (created["rpm"], created["tpm"], created["models"]) == (60, 10000, ["gpt-4o-mini", "small"])
    assert created["expires"] == "2030-01-01T00:00:00+00:00" and created["tags"] == {"cost_centre": "cc-7"}
    code, out, _ = _run("keys", "list", "--json")
    listed = json.loads(out)["data"]
    assert [k["id"] for k in listed] == [created["id"]] and created["key"] not in out


def test_update_and_revoke_by_key_id_or_name(home: Path) -> None:
    created = json.loads(_run("keys", "create", "--name", "svc", "--json")[1])
    code, out, _ = _run("keys", "update", "svc", "--budget-usd", "3", "--rpm", "5", "--json")
    assert code == 0 and json.loads(out)["budget_usd"] == "3" and json.loads(out)["rpm"] == 5
    code, out, _ = _run("keys", "update", created["id"], "--budget-usd", "none", "--rpm", "0", "--json")
    assert json.loads(out)["budget_usd"] is None and json.loads(out)["rpm"] is None
    code, out, _ = _run("keys", "revoke", created["key"], "--json")
    assert code == 0 and json.loads(out)["status"] == "revoked"


def test_team_budget(home: Path) -> None:
    code, out, _ = _run("keys", "team", "research", "--budget-usd", "100", "--period", "daily", "--json")
    assert code == 0 and json.loads(out) == {"name": "research", "budget_usd": "100", "period": "daily",
                                             "rpm": None, "tpm": None}


@pytest.mark.parametrize(("args", "message"), [
    (("keys", "create", "--name", "x", "--budget-usd", "lots"), "is not an amount"),
    (("keys", "create", "--name", "x", "--budget-usd", "-1"), "non-negative"),
    (("keys", "create", "--name", "x", "--expires", "soon"), "ISO date"),
    (("keys", "create", "--name", "x", "--tag", "novalue"), "NAME=VALUE"),
    (("keys", "revoke", "tk-doesnotexist1234"), "no key matches key …1234"),
    (("keys", "update", "nobody"), "nothing to change"),
])
def test_bad_input_is_one_line_and_exit_2(home: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = _run(*args)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("error: ")


def test_url_needs_the_master_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENOMY_MASTER_KEY", raising=False)
    code, _, err = _run("keys", "list", "--url", "http://127.0.0.1:9/v1")
    assert code == 2 and "TOKENOMY_MASTER_KEY" in err


def test_serve_refuses_a_public_address_without_a_master_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_MASTER_KEY"}
    result = subprocess.run([sys.executable, "-m", "tokenomy", "serve", "--host", "0.0.0.0", "--port", "1"],
                            env={**env, "TOKENOMY_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: refusing to serve on 0.0.0.0 without a master key")
    assert "--insecure" in result.stderr


def test_key_revoked_through_one_replica_is_refused_by_all_within_5_s(
        fault: tuple[str, FaultUpstream], tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = serve_config(tmp_path / "c.yaml", [priced("echo", fault[0], "echo")])
    with replicas(3, config, tmp_path / "home", redis_prefix) as urls:
        monkeypatch.setenv("TOKENOMY_MASTER_KEY", MASTER)
        code, out, _ = _run("keys", "create", "--name", "short-lived-" + uuid.uuid4().hex[:4], "--json",
                            "--url", urls[1])
        assert code == 0, out
        key = json.loads(out)["key"]
        deadline = time.monotonic() + 10
        while not all(admin(u, "GET", "/v1/key", key=key)[0] == 200 for u in urls):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        code, out, _ = _run("keys", "revoke", key, "--url", urls[0], "--json")
        assert code == 0 and json.loads(out)["status"] == "revoked"
        revoked_at = time.monotonic()
        refused_after: dict[str, float] = {}
        while len(refused_after) < len(urls) and time.monotonic() - revoked_at < 10:
            for url in urls:
                if url not in refused_after and admin(url, "GET", "/v1/key", key=key)[0] == 401:
                    refused_after[url] = time.monotonic() - revoked_at
            time.sleep(0.05)
        print({u[-8:]: round(t, 2) for u, t in refused_after.items()})
        assert len(refused_after) == 3 and max(refused_after.values()) < 5, refused_after
        assert refused_after[urls[0]] < 0.5  # the replica that revoked it refuses it at once
