"""``tokenomy plan`` through the real click group: the JSON shape, the table, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokenomy.cli.main import cli

SEED_ARGS = ["plan", "--queries-per-day", "100000", "--input-tokens", "1500", "--output-tokens", "500"]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENOMY_HOME", str(tmp_path / "home"))


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def test_json_is_one_object_with_apis_self_hosted_and_claims() -> None:
    code, out, _ = _run([*SEED_ARGS, "--json"])
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"workload", "traffic", "assumptions", "apis", "self_hosted", "claims"}
    assert doc["workload"]["tokens_per_month"] == 100_000 * 30 * 2_000
    turbo = next(a for a in doc["apis"] if a["model"] == "openai/gpt-4-turbo" and a["tier"] == "frontier")
    assert turbo["usd_per_month"] == 90_000.0
    assert {a["tier"] for a in doc["apis"]} == {"frontier", "frontier batch", "mid", "mid batch"}
    gpus = {o["gpu"] for o in doc["self_hosted"]}
    assert {"H100", "A100", "L4", "CPU-16"} <= gpus
    assert {o["model_size"] for o in doc["self_hosted"]} >= {"8B", "13B", "70B"}
    for option in doc["self_hosted"]:
        assert option["spot"]["usd_per_month"] < option["on_demand"]["usd_per_month"]
        assert option["autoscaled"]["gpu_hours_per_day"] <= option["autoscaled"]["fixed_gpu_hours_per_day"]
        assert option["source"]
    assert [c["holds"] for c in doc["claims"]] == [True, False, False, False, False, False, False]
    assert [c["status"] for c in doc["claims"]] == ["holds", "qualified", "qualified", "qualified", "qualified",
                                                    "qualified", "does not hold"]
    assert doc["assumptions"]["gpu_prices"]["H100"]["on_demand_source"]


def test_table_by_default_names_the_claims() -> None:
    code, out, _ = _run(SEED_ARGS)
    assert code == 0
    assert "gpt-4-turbo" in out and "90,000" in out and "holds only for short requests" in out


def test_from_audit_reads_the_minimal_schema_and_its_curve(tmp_path: Path) -> None:
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps({"queries_per_day": 100000, "input_tokens": 1500, "output_tokens": 500,
                                 "hourly_share": [0] * 8 + [1] * 10 + [0] * 6, "other": "ignored"}))
    code, out, _ = _run(["plan", "--from-audit", str(audit), "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["traffic"]["peak_factor"] == pytest.approx(2.4)
    assert doc["apis"][0]["usd_per_month"] == 90_000.0
    assert all(o["autoscaled"]["zero_replica_minutes"] >= 600 for o in doc["self_hosted"])


def test_gpus_override_changes_the_prices(tmp_path: Path) -> None:
    packaged = json.loads((Path(__file__).parents[2] / "src/tokenomy/plan/gpus.json").read_text())
    for gpu in packaged["gpus"]:
        gpu["on_demand"]["usd_per_hour"] = "100"
    custom = tmp_path / "gpus.json"
    custom.write_text(json.dumps(packaged))
    code, out, _ = _run([*SEED_ARGS, "--json", "--gpus", str(custom)])
    assert code == 0
    first = json.loads(out)["self_hosted"][0]
    assert first["on_demand"]["usd_per_month"] == first["gpus"] * 720 * 100


@pytest.mark.parametrize(("args", "message"), [
    (["plan"], "give --queries-per-day"),
    (["plan", "--queries-per-day", "100"], "go together"),
    (["plan", "--queries-per-day", "-5", "--input-tokens", "1", "--output-tokens", "1"], "queries_per_day"),
    ([*SEED_ARGS, "--utilisation", "1.5"], "--utilisation"),
    ([*SEED_ARGS, "--peak-factor", "50"], "--peak-factor"),
    ([*SEED_ARGS, "--gpus", "/nonexistent/gpus.json"], "cannot read GPU price file"),
    (["plan", "manifests", "--out", "x", "--gpu", "TPU"], "no throughput row"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, _, err = _run(args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_bad_audit_file_names_the_missing_field(tmp_path: Path) -> None:
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps({"queries_per_day": 10, "input_tokens": 5}))
    code, _, err = _run(["plan", "--from-audit", str(audit)])
    assert code == 2 and "missing field 'output_tokens'" in err and len(err.strip().splitlines()) == 1
    audit.write_text("{not json")
    code, _, err = _run(["plan", "--from-audit", str(audit)])
    assert code == 2 and "not valid JSON" in err


def test_bad_throughput_file_names_the_row(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"rows": [{"model_size": "8B", "precision": "fp16", "gpu": "H100", "gpus": 1,
                                         "decode_tokens_per_s": 0, "prefill_tokens_per_s": 1, "concurrency": 1,
                                         "source": "x"}]}))
    code, _, err = _run([*SEED_ARGS, "--throughput", str(bad)])
    assert code == 2 and "rows[0]" in err and "decode_tokens_per_s" in err
