"""``tokenomy audit`` through the real click group: --demo, --json into ``tokenomy plan --from-audit``, errors."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.audit.logs import chat, line, write_jsonl

from tokenomy.audit.demo import demo_lines
from tokenomy.cli.main import cli


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENOMY_HOME", str(tmp_path / "home"))


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def demo_doc() -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["audit", "--demo", "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_demo_json_has_the_report_and_the_planner_keys(demo_doc: dict[str, Any]) -> None:
    doc = demo_doc
    assert doc["requests"] == 3650 and doc["bad_lines"]["count"] == 2
    assert 6.9 < doc["days"] <= 7 and doc["queries_per_day"] == round(3650 / doc["days"])
    assert 1000 < doc["input_tokens"] < 3000 and 100 < doc["output_tokens"] < 400
    assert len(doc["hourly_share"]) == 24 and sum(doc["hourly_share"]) == 3650
    assert doc["hourly_share"][10] > 5 * doc["hourly_share"][3]  # diurnal
    assert set(doc["spend"]["by_model"]) == {"gpt-4.1", "gpt-4o", "gpt-4.1-mini"}
    assert len(doc["spend"]["by_day"]) == 7
    assert 0.15 < doc["exact_repeats"]["share"] < 0.5
    assert doc["shared_prefix"]["share_of_input_tokens"] > 0.5
    assert doc["semantic_cache"]["measured"] and 0 < doc["semantic_cache"]["hits"] < doc["semantic_cache"]["sampled"]
    sav = doc["savings"]["monthly_usd"]
    assert doc["savings"]["order"] == ["exact_cache", "semantic_cache", "routing", "prompt_caching", "batch"]
    alone = [sav[k] for k in doc["savings"]["order"]]
    assert all(v > 0 for v in alone)
    assert max(alone) <= sav["combined"] < sum(alone)
    assert sav["combined"] < doc["spend"]["monthly_usd"]


def test_no_semantic_leaves_it_out(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", [line(chat("Where is my order?"), "2026-03-02T10:00:00Z")])
    code, out, _ = _run(["audit", str(path), "--json", "--no-semantic"])
    doc = json.loads(out)
    assert code == 0 and doc["semantic_cache"] == {"measured": False, "note": "not requested"}
    assert "semantic_cache" not in doc["savings"]["monthly_usd"]


def test_demo_is_deterministic() -> None:
    first = list(islice(demo_lines(), 300))
    assert first == list(islice(demo_lines(), 300))
    assert first != list(islice(demo_lines(seed=8), 300))


def test_plan_reads_the_audit_json(demo_doc: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(demo_doc))
    code, out, err = _run(["plan", "--from-audit", str(path), "--json"])
    assert code == 0, err
    workload = json.loads(out)["workload"]
    assert workload["queries_per_day"] == demo_doc["queries_per_day"]
    assert workload["input_tokens"] == demo_doc["input_tokens"]
    assert workload["output_tokens"] == demo_doc["output_tokens"]


def test_terminal_summary_and_bad_line_report(tmp_path: Path) -> None:
    good = line(chat("Where is my order?"), "2026-03-02T10:00:00Z")
    private = line(chat("Hi", model="my-private-model"), "2026-03-02T10:01:30Z", prompt=300, completion=60)
    path = write_jsonl(tmp_path / "log.jsonl", [good, "{oops", good, private])
    code, out, _ = _run(["audit", str(path), "--small-model", "gpt-4o-mini"])
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("Audit: 3 requests over 1.5 minutes (2026-03-02T10:00:00Z to 2026-03-02T10:01:30Z)")
    # the unpriced share on the first line: 1 of 3 requests, 360 of 580 tokens
    assert first.endswith("UNPRICED: 33.3% of requests, 62.1% of tokens (1 model with no price; not in the spend)")
    assert "caveat: extrapolated from 1.5 minutes of traffic" in out
    assert "skipped 1 bad lines: log.jsonl:2 (invalid JSON)" in out
    assert "Savings per month" in out and "1 repeats (50.0%)" in out


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = _run(["audit"])
    assert code == 2 and err.strip() == "error: give LOG files or --demo (not both)"
    code, _, err = _run(["audit", str(tmp_path / "nope.jsonl")])
    assert code == 2 and "no such file" in err
    junk = write_jsonl(tmp_path / "junk.jsonl", ["{bad", "{worse"])
    code, _, err = _run(["audit", str(junk)])
    assert code == 2 and "no JSON object" in err
    only_bad = write_jsonl(tmp_path / "bad.jsonl", [{"request": {"messages": []}}])
    code, _, err = _run(["audit", str(only_bad)])
    assert code == 2 and "no request could be read" in err and "bad.jsonl:1 no model" in err
