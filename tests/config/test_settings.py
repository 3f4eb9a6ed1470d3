from __future__ import annotations

from pathlib import Path

import pytest

from tokenomy.config.settings import load_settings
from tokenomy.errors import ConfigError
from tokenomy.providers.registry import resolve_deployments


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tokenomy.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_are_the_embedded_default() -> None:
    settings = load_settings(env={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 4000)
    deployments = resolve_deployments(settings, {})
    assert [(d.provider, d.tier, d.model) for d in deployments] == [("local", "small", "smollm2-135m-instruct")]


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "server:\n  port: 5000\n  host: 0.0.0.0\n")
    assert load_settings(cfg, env={}).server.port == 5000
    assert load_settings(cfg, env={"TOKENOMY_PORT": "6000"}).server.port == 6000
    settings = load_settings(cfg, env={"TOKENOMY_PORT": "6000"}, flags={"server.port": 7000})
    assert settings.server.port == 7000 and settings.server.host == "0.0.0.0"


def test_config_path_from_env(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "local:\n  enabled: false\n")
    assert load_settings(env={"TOKENOMY_CONFIG": cfg}).local.enabled is False


@pytest.mark.parametrize(("text", "expected"), [
    ("server:\n  port: abc\n", "key 'server.port': Expected `int`, got `str` (got 'abc')"),
    ("server:\n  port: 70000\n", "key 'server.port': must be in 1..65535 (got 70000)"),
    ("deployments:\n  - name: a\n    provider: openia\n    model: m\n", "key 'deployments[0].provider'"),
    ("deployments:\n  - name: a\n    provider: vllm\n    model: m\n", "key 'deployments[0].base_url'"),
    ("retries: 3\n", "unknown field `retries`"),
    ("- just\n- a list\n", "must hold a mapping at the top"),
    ("server: [\n", "is not valid YAML"),
])
def test_bad_config_names_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env={})
    assert expected in info.value.message
    assert "\n" not in info.value.message


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(env={"TOKENOMY_PORT": "not-a-port"})


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(str(tmp_path / "nope.yaml"), env={})


def test_env_keys_join_their_tiers() -> None:
    settings = load_settings(env={})
    deployments = resolve_deployments(settings, {"OPENAI_API_KEY": "sk-x", "GROQ_API_KEY": "g"})
    tiers = {d.model: d.tier for d in deployments}
    assert tiers["gpt-4o"] == "frontier" and tiers["gpt-4o-mini"] == "medium"
    assert tiers["llama-3.1-8b-instant"] == "small" and tiers["smollm2-135m-instruct"] == "small"
    assert not any(d.provider == "anthropic" for d in deployments)
