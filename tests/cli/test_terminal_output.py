"""Human output a terminal can show (issue 23): tables within 80 columns with every price and every id whole,
progress on stderr whenever it is a terminal (also with --json), no Python reprs or epoch seconds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openai
from tests.cli.terminal import in_terminal
from tests.control.parts import priced

from servers import run_gateway
from tokenomy.config.settings import LocalConfig, Settings
from tokenomy.testing.fault_upstream import FaultUpstream


def _width(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_prices_fit_80_columns_with_every_price(tmp_path: Path) -> None:
    code, shown, _ = in_terminal("prices", home=tmp_path)
    assert code == 0
    assert _width(shown) <= 80
    row = next(line for line in shown.splitlines() if line.split()[:1] == ["openai/gpt-4o"])
    figures = row.split()[1:]  # input, cached, output, batch in/out
    assert [float(x) for x in figures[:3]] == [2.5, 1.25, 10.0]
    assert [float(x) for x in figures[3].split("/")] == [1.25, 5.0]
    assert "--wide" in shown
    code, wide, _ = in_terminal("prices", "--wide", home=tmp_path)
    row = next(line for line in wide.splitlines() if line.split()[:1] == ["openai/gpt-4o"])
    assert row.split()[1] == "openai" and float(row.split()[3]) == 2.5


def test_keys_list_keeps_ids_whole(tmp_path: Path) -> None:
    env = {"TOKENOMY_HOME": str(tmp_path / "home")}
    ids = []
    for name in ("a-rather-long-key-name-for-the-search-team", "ci"):
        made = subprocess.run([sys.executable, "-m", "tokenomy", "keys", "create", "--name", name, "--budget-usd",
                               "25", "--period", "monthly", "--expires", "2999-01-01", "--json"],
                              capture_output=True, text=True, env={**os.environ, **env}, check=True)
        ids.append(json.loads(made.stdout)["id"])
    code, shown, _ = in_terminal("keys", "list", home=tmp_path, env=env)
    assert code == 0 and _width(shown) <= 80
    found = re.findall(r"key_[0-9a-f]+", shown)
    assert found == ids  # whole, in creation order
    assert "25 monthly" in shown and "2999-01-01" in shown


def test_spend_shows_no_python_reprs(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    home = tmp_path / "home"
    settings = Settings(deployments=[priced("echo-deployment", fault[0], "echo", model="echo")],
                        local=LocalConfig(enabled=False), home=str(home))
    with run_gateway(settings) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    code, shown, _ = in_terminal("spend", "--by", "deployment", home=tmp_path, env={"TOKENOMY_HOME": str(home)})
    assert code == 0 and _width(shown) <= 80
    assert "{" not in shown and "Decimal(" not in shown and "None" not in shown
    assert "0 (0.0% of requests)" in shown  # cache hits, not a dict
    assert "tier mix   medium 100%" in re.sub(" {3,}", "   ", shown)
    header = next(line for line in shown.splitlines() if "requests" in line and "cost $" in line)
    assert header.split()[0] == "deployment"  # the group's name heads its column
    assert any(line.split()[:2] == ["echo-deployment", "2"] for line in shown.splitlines()), shown


def _log(path: Path, n: int) -> Path:
    rows = [{"timestamp": 1_772_400_000 + i, "request": {"model": "gpt-4o", "messages": [
        {"role": "user", "content": f"question {i % 7}"}]}, "response": {"model": "gpt-4o", "choices": [
            {"message": {"role": "assistant", "content": "answer"}}], "usage": {"prompt_tokens": 12,
                                                                             "completion_tokens": 3}}}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_progress_on_a_terminal_stderr_also_with_json(tmp_path: Path) -> None:
    log = str(_log(tmp_path / "requests.jsonl", 400))
    # stdout is the JSON (a pipe); stderr is a terminal: the progress bar shows there
    code, progress, out = in_terminal("audit", log, "--json", "--no-semantic", home=tmp_path, stream="stderr")
    assert code == 0
    assert json.loads(out)["requests"] == 400
    assert "requests.jsonl" in progress and "kB" in progress
    # stderr not a terminal: no progress at all
    piped = subprocess.run([sys.executable, "-m", "tokenomy", "audit", log, "--json", "--no-semantic"],
                           capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, check=True)
    assert piped.stderr == ""
