"""The command line as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "-m", "tokenomy", *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})}, check=False)


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("deployments:\n  - name: oa\n    provider: openai\n    model: gpt-4o\n"
                   "    headers: {Authorization: Bearer sk-abcdefghijklmnop}\n")
    result = _run("config", "show", "--config", str(cfg), env={"OPENAI_API_KEY": "sk-live-1234567890wxyz",
                                                               "TOKENOMY_REDIS_URL": "redis://app:hunter2@cache:6379/0"})
    assert result.returncode == 0, result.stderr
    assert "sk-live-1234567890wxyz" not in result.stdout and "sk-abcdefghijklmnop" not in result.stdout
    assert "$OPENAI_API_KEY (set, ****wxyz)" in result.stdout
    assert "****mnop" in result.stdout
    assert "hunter2" not in result.stdout and "redis://app:****@cache:6379/0" in result.stdout


def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server:\n  port: nope\n")
    result = _run("serve", "--config", str(cfg))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = _run("--debug", "config", "show", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_import_litellm_writes_file(tmp_path: Path) -> None:
    src = tmp_path / "litellm.yaml"
    src.write_text("model_list:\n  - model_name: fast\n    litellm_params: {model: groq/llama-3.1-8b-instant}\n")
    out = tmp_path / "tokenomy.yaml"
    result = _run("config", "import-litellm", str(src), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "provider: groq" in out.read_text() and "tier: small" in out.read_text()
