"""`tokenomy config check` and the same check at the start of `tokenomy serve`: one line per problem, exit 2 on an
error, never a traceback (issue 23)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from servers import free_port, run_aiohttp

NO_LOCAL = "local: {enabled: false}\nenv_providers: false\n"


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "-m", "tokenomy", *args], capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})}, check=False)


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tokenomy.yaml"
    path.write_text(text)
    return str(path)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_unreadable_router_is_one_line_in_check_and_serve(tmp_path: Path) -> None:
    cfg = _config(tmp_path, f"routing:\n  routers:\n    auto: {{path: {tmp_path / 'nowhere'}}}\n")
    home = {"TOKENOMY_HOME": str(tmp_path / "home")}
    show = _run("config", "show", "--config", cfg, env=home)
    check = _run("config", "check", "--config", cfg, env=home)
    serve = _run("serve", "--config", cfg, "--port", str(free_port()), env=home)
    assert show.returncode == 0  # show prints what was asked for; check says whether it can run
    for result in (check, serve):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        [line] = [x for x in _lines(result.stderr) if x.startswith("error:")]
        assert line.startswith(f"error: {cfg}: key 'routing.routers.auto': ") and "manifest.json is missing" in line
    assert _lines(check.stderr) == _lines(serve.stderr)  # serve runs the same check, and only it, before starting


def test_every_problem_is_one_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, NO_LOCAL + "deployments:\n"
                  "  - {name: oa, provider: openai, model: gpt-4o, tier: frontier}\n"
                  "  - {name: mine, provider: vllm, model: my-llama, base_url: 'http://127.0.0.1:9/v1'}\n"
                  "fallbacks:\n  gpt-4o: [gpt-9, frontier]\n"
                  "cache:\n  exact: {store: redis}\n")
    result = _run("config", "check", "--config", cfg, env={"TOKENOMY_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    lines = _lines(result.stderr)
    errors = [x for x in lines if x.startswith("error:")]
    warnings = [x for x in lines if x.startswith("warning:")]
    assert len(errors) == 3 and len(warnings) == 1, lines
    assert "deployment 'oa': environment variable OPENAI_API_KEY is not set" in errors[0]
    assert "key 'fallbacks.gpt-4o': 'gpt-9' is neither a configured model nor a tier; known: frontier, gpt-4o" in \
        lines[1]
    assert "key 'cache.exact.store': 'redis' needs TOKENOMY_REDIS_URL" in errors[2]
    # the self-hosted model has no price: served, but its cost is unknown
    assert "deployment 'mine': no price for model 'my-llama'" in warnings[0]
    # with the key set the same file is served (warnings are not errors)
    fixed = _config(tmp_path, NO_LOCAL + "deployments:\n  - {name: oa, provider: openai, model: gpt-4o}\n")
    ok = _run("config", "check", "--config", fixed, env={"OPENAI_API_KEY": "sk-test",
                                                         "TOKENOMY_HOME": str(tmp_path / "home")})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"ok: {fixed}: 1 deployments (oa)")


def test_litellm_config_points_at_the_importer(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "model_list:\n  - model_name: fast\n    litellm_params: {model: groq/llama-3.1-8b}\n")
    for args in (("config", "check", "--config", cfg), ("serve", "--config", cfg)):
        result = _run(*args)
        assert result.returncode == 2
        assert _lines(result.stderr) == [
            f"error: config file {cfg} is a LiteLLM proxy config (it has model_list): convert it with `tokenomy "
            f"config import-litellm {cfg} --out tokenomy.yaml`, then pass --config tokenomy.yaml"]


def test_enum_errors_list_the_values(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "deployments:\n  - {name: a, provider: opneai, model: x}\n")
    result = _run("config", "check", "--config", cfg)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("key 'deployments[0].provider': Invalid enum value 'opneai' (got "
                                          "'opneai'); one of: local, openai, anthropic, openai_compatible, "
                                          "openrouter, together, groq, deepseek, fireworks, mistral, ollama, vllm, "
                                          "sglang, llamacpp")
    routers = _config(tmp_path, "routing:\n  routers:\n    maths: {path: /x, policy: cascad}\n")
    assert _run("config", "check", "--config", routers).stderr.strip().endswith(
        "key 'routing.routers.maths.policy': Invalid enum value 'cascad' (got 'cascad'); one of: route, cascade, auto")


def test_online_reaches_stores_and_upstreams(tmp_path: Path) -> None:
    async def models(request: web.Request) -> web.Response:
        if request.headers.get("authorization") != "Bearer sk-good":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    with run_aiohttp(app) as base:
        cfg = _config(tmp_path, NO_LOCAL + "deployments:\n  - {name: up, provider: openai_compatible, model: m, "
                      f"base_url: '{base}/v1', api_key_env: UP_KEY, price: {{input_usd_per_mtok: 1, "
                      "output_usd_per_mtok: 2}}\n")
        env = {"TOKENOMY_HOME": str(tmp_path / "home")}
        good = _run("config", "check", "--online", "--config", cfg, env={**env, "UP_KEY": "sk-good"})
        bad = _run("config", "check", "--online", "--config", cfg, env={**env, "UP_KEY": "sk-bad",
                                                                         "TOKENOMY_REDIS_URL": "redis://127.0.0.1:1/0"})
        offline = _run("config", "check", "--config", cfg, env={**env, "UP_KEY": "sk-bad"})
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith("stores and upstreams reached")
    assert bad.returncode == 2
    assert _lines(bad.stderr) == [
        f"error: {cfg}: key 'redis_url': cannot reach Redis at redis://127.0.0.1:1/0: Error 111 connecting to "
        "127.0.0.1:1. Connection refused.",
        f"error: {cfg}: deployment 'up': {base}/v1 refused the key in UP_KEY (HTTP 401)"]
    assert offline.returncode == 0  # without --online nothing is contacted


def test_busy_port_fails_before_start_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("serve", "--port", str(port), env={"TOKENOMY_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert _lines(result.stderr) == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another "
                                     "tokenomy serve?); pass --port or set TOKENOMY_PORT"]


def test_a_store_failing_at_start_up_is_one_line(tmp_path: Path) -> None:
    # passes the offline check; fails when the gateway opens its ledger: still no traceback, exit 2. (A PostgreSQL
    # ledger that does not answer is a degraded start instead: tests/hardening/test_degraded_start.py.)
    garbage = tmp_path / "ledger.db"
    garbage.write_bytes(b"not a SQLite database, but a file the checks can read and write\n" * 64)
    url = f"sqlite:///{garbage}"
    env = {"TOKENOMY_HOME": str(tmp_path / "home"), "TOKENOMY_DATABASE_URL": url}
    result = _run("serve", "--config", _config(tmp_path, NO_LOCAL + "deployments:\n  - {name: v, provider: vllm, "
                  "model: v, base_url: 'http://127.0.0.1:9/v1', price: {gpu_hour_usd: 1, tokens_per_s: 100}}\n"),
                  "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert _lines(result.stderr)[-1].startswith(f"error: cannot migrate the ledger at {url}")
