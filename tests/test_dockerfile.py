"""The Dockerfile, without a container engine (none runs in CI): read with Docker's own parser and held to the rules
a linter (hadolint) would check and to what the Kubernetes manifests expect of the image; and, opt-in because it
compiles llama-cpp-python (~5 minutes on an idle 2-core box; it ran past 30 minutes on a loaded one), its install
steps run in fresh venvs:

    TOKENOMY_TEST_DOCKERFILE=1 .venv/bin/python -m pytest tests/test_dockerfile.py

``TOKENOMY_TEST_DOCKERFILE_LLAMA=DIR`` takes the llama-cpp-python wheel from DIR (the Makefile's, built with the same
flags: ``~/.cache/tokenomy/wheels-llama-0.3.36``) instead of compiling it again; every other step runs as written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _commands() -> list[Any]:
    import dockerfile

    return list(dockerfile.parse_file(str(DOCKERFILE)))


def _stages() -> list[list[Any]]:
    stages: list[list[Any]] = []
    for command in _commands():
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def _runs(stage: list[Any]) -> list[str]:
    return [" ".join(c.value) for c in stage if c.cmd == "RUN"]


def test_two_stages_the_last_one_runs_as_no_root() -> None:
    stages = _stages()
    assert len(stages) == 2
    for stage in stages:
        image = stage[0].value[0]
        assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-bookworm", image), image  # pinned, not :latest
    final = stages[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(c.cmd == "COPY" and "--from=build" in c.flags for c in final)
    assert not any(c.cmd == "ENTRYPOINT" for c in _commands())  # the manifests' args are the whole command


def test_llama_cpp_is_compiled_once_in_the_build_stage_with_the_makefile_flags() -> None:
    build, final = _stages()
    compiled = [r for r in _runs(build) + _runs(final) if "--no-binary llama-cpp-python" in r]
    assert len(compiled) == 1 and compiled[0] in _runs(build)
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^LLAMA_VERSION := (\S+)", makefile, re.M)
    assert version and f"llama-cpp-python=={version[1]}" in compiled[0]
    flags = re.search(r"LLAMA_CMAKE_ARGS := (.*?)\nelse", makefile, re.S)
    env = " ".join(" ".join(c.value) for c in build if c.cmd == "ENV")
    assert flags and " ".join(flags[1].replace("\\", " ").split()) in " ".join(env.split())
    for run in _runs(final):  # the runtime installs the built wheels only: nothing compiled, nothing downloaded
        if "pip install" in run:
            assert "--no-index" in run


def test_lint_rules() -> None:
    """hadolint's rules that apply here: apt without recommends and with its lists removed (DL3015, DL3009), pip
    without a cache (DL3042), versions pinned (DL3013), a WORKDIR before relative paths (DL3000), JSON CMD (DL3025)."""
    for run in (r for stage in _stages() for r in _runs(stage)):
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run
        for pip in re.findall(r"pip (?:install|wheel)[^&]*", run):
            assert "--no-cache-dir" in pip, pip
            assert all("==" in name for name in _requirements(pip)), pip
    for command in _commands():
        if command.cmd in ("CMD", "HEALTHCHECK") and command.cmd == "CMD":
            assert command.json, "CMD in JSON form"
    workdirs = [c for c in _stages()[0] if c.cmd == "WORKDIR"]
    assert workdirs and workdirs[0].value[0].startswith("/")


def test_health_check_port_and_command_match_the_manifests() -> None:
    from tokenomy.plan.manifests import ManifestSpec, tokenomy_documents

    final = _stages()[-1]
    [health] = [c for c in final if c.cmd == "HEALTHCHECK"]
    assert "http://127.0.0.1:4000/healthz" in " ".join(health.value)
    assert [c.value for c in final if c.cmd == "EXPOSE"] == [("4000",)]
    [cmd] = [c for c in final if c.cmd == "CMD"]
    spec = ManifestSpec(name="x", model="m")
    gateway = tokenomy_documents(spec)[0]["spec"]["template"]["spec"]["containers"][0]
    assert list(cmd.value) == gateway["args"]  # the image's default command is the manifests' command
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert gateway["image"] == f"tokenomy:{version}"
    assert f"tokenomy:{version}" in DOCKERFILE.read_text()
    env = {k: v for c in final if c.cmd == "ENV" for k, v in _env_pairs(c.value).items()}
    assert env["TOKENOMY_HOME"] == gateway["volumeMounts"][0]["mountPath"]  # the data dir is the manifests' volume


def test_what_it_copies_exists_and_the_context_leaves_out_the_venv() -> None:
    for command in _commands():
        if command.cmd == "COPY" and not any(f.startswith("--from") for f in command.flags):
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


@pytest.mark.skipif(os.environ.get("TOKENOMY_TEST_DOCKERFILE") != "1",
                    reason="compiles llama-cpp-python (~5 min): set TOKENOMY_TEST_DOCKERFILE=1 to run")
def test_install_steps_run_in_a_fresh_venv(tmp_path: Path) -> None:
    """Each stage's pip steps as the Dockerfile writes them, in fresh venvs: /wheels, /src and /opt/tokenomy become
    folders here; system steps (apt-get, useradd, chown) are left to docker. The result serves `config check`."""
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(ROOT / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__"))
    places = {"/wheels": str(tmp_path / "wheels"), "/opt/tokenomy": str(tmp_path / "opt")}
    prebuilt = os.environ.get("TOKENOMY_TEST_DOCKERFILE_LLAMA")
    if prebuilt:
        (tmp_path / "wheels").mkdir()
        for wheel in Path(prebuilt).expanduser().glob("llama_cpp_python-*.whl"):
            shutil.copy(wheel, tmp_path / "wheels")
    build_venv = tmp_path / "build-venv"
    subprocess.run([sys.executable, "-m", "venv", str(build_venv)], check=True)
    env = {**os.environ, "PATH": f"{build_venv / 'bin'}:{os.environ['PATH']}"}
    for stage in _stages():
        for command in stage:
            if command.cmd == "ENV":
                env.update(_env_pairs(command.value))
            if command.cmd != "RUN":
                continue
            for step in " ".join(command.value).split("&&"):
                step = step.strip()
                if not step.startswith(("pip ", "python ", "/opt/tokenomy/bin/pip ")):
                    continue  # apt-get, useradd, chown, rm: the image's system, not the install
                if prebuilt and "--no-binary llama-cpp-python" in step:
                    continue  # the same compile, done by the Makefile on this machine
                for path, here in places.items():
                    step = step.replace(path, here)
                subprocess.run(["bash", "-c", step], cwd=context, env=env, check=True, timeout=1800)
    tokenomy = tmp_path / "opt" / "bin" / "tokenomy"
    done = subprocess.run([str(tokenomy), "config", "check"], env={"PATH": os.environ["PATH"],
                                                                   "HOME": str(tmp_path),
                                                                   "TOKENOMY_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "local/smollm2-135m-instruct" in done.stdout  # the local tier's model and runtime are installed


def _requirements(pip: str) -> list[str]:
    """The packages a pip command names from an index (not its flags, their values, or local paths)."""
    words, found, skip = pip.split()[2:], [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--no-binary", "--wheel-dir", "--find-links", "-w", "-f"):
            skip = True
        elif not word.startswith(("-", ".", "/", '"', "'")):
            found.append(word)
    return found


def _env_pairs(value: tuple[str, ...]) -> dict[str, str]:
    """ENV's parsed values: (name, value, name, value, ...)."""
    pairs = dict(zip(value[::2], value[1::2], strict=True))
    return {k: v.strip('"') for k, v in pairs.items() if k != "PATH"}
