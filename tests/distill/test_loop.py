"""The whole loop on a tiny set of real data, through the CLI: demo-log → tasks → collect → train → eval → promote
→ status → estimate. The head student (no torch): this is the CI test of the issue's "Done when"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokenomy.cli.main import cli


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_tasks_collect_train_eval_promote(tmp_path: Path) -> None:
    log, data, student = tmp_path / "log.jsonl", tmp_path / "data", tmp_path / "student"
    run("distill", "demo-log", "--out", str(log), "--task", "topic", "--task", "math", "--limit", "150")
    tasks = json.loads(run("distill", "tasks", str(log), "--by", "system", "--json"))["tasks"]
    shapes = {t["shape"] for t in tasks}
    assert shapes == {"classification", "free-text"}
    topic = next(t for t in tasks if t["shape"] == "classification")
    assert topic["distinct_prompts"] == 150 and topic["requests"] > 150  # repeats are in the log
    assert topic["teacher_models"] == {"gpt-4o": topic["requests"]} and float(topic["spend_usd"]) > 0

    manifest = json.loads(run("distill", "collect", str(log), "--task", topic["name"], "--out", str(data), "--json"))
    assert manifest["train"] + manifest["eval"] == 150
    assert 0.1 < manifest["eval"] / 150 < 0.3
    train_rows = (data / "train.jsonl").read_text().splitlines()
    eval_rows = (data / "eval.jsonl").read_text().splitlines()
    first = json.loads(train_rows[0])["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert not {json.dumps(json.loads(r)["messages"][:-1]) for r in train_rows} & \
        {json.dumps(json.loads(r)["messages"][:-1]) for r in eval_rows}  # never evaluated on training prompts

    summary = json.loads(run("distill", "train", "--data", str(data), "--out", str(student), "--json"))
    assert summary["kind"] == "head" and "classification-shaped" in summary["why"]

    result = json.loads(run("distill", "eval", "--student", str(student), "--data", str(data), "--json"))
    assert result["n"] == manifest["eval"]
    assert result["agreement"] >= result["majority_agreement"] + 0.2
    assert result["cost_ratio"] < 0.01  # the student costs under 1/100 of the teacher
    full = result["coverage"][0]
    assert full["threshold"] == 0 and full["coverage"] == 1 and full["agreement"] == result["agreement"]
    assert result["coverage"][-1]["cascade_agreement"] >= result["agreement"]

    registry = tmp_path / "students.json"
    env = {"TOKENOMY_DISTILL_REGISTRY": str(registry)}
    promoted = json.loads(run("distill", "promote", str(student), "--min-agreement", "0.6", "--json", env=env))
    assert promoted["state"] == "shadow" and promoted["deployment"] == f"distill/{topic['name']}"
    assert promoted["at_threshold"]["agreement"] >= 0.6
    status = json.loads(run("distill", "status", "--json", env=env))["students"]
    assert [s["state"] for s in status] == ["shadow"] and status[0]["threshold"] == promoted["threshold"]

    plan = json.loads(run("distill", "estimate", "--examples", "10000", "--data", str(data), "--json"))
    assert {r["gpu"] for r in plan["runs"]} == {"A100", "H100", "L4"}
    assert plan["serving"]["requests_per_day"] == manifest["requests_per_day"]


@pytest.mark.parametrize("args, message", [
    (["distill", "collect", "LOG", "--task", "nope", "--out", "OUT"], "no task named 'nope'"),
    (["distill", "collect", "LOG", "--task", "x", "--where", "colour=red", "--out", "OUT"], "expected system=HASH"),
    (["distill", "train", "--data", "LOG_DIR", "--out", "OUT"], "no manifest.json"),
    (["distill", "estimate", "--base", "huge", "--examples", "10"], "expected a size"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    log = tmp_path / "log.jsonl"
    run("distill", "demo-log", "--out", str(log), "--task", "science-domain", "--limit", "20")
    args = [a.replace("LOG_DIR", str(tmp_path)).replace("LOG", str(log)).replace("OUT", str(tmp_path / "o"))
            for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output and result.output.count("\n") == 1
