from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tokenomy.config.litellm_import import convert_litellm
from tokenomy.config.settings import Settings, load_settings
from tokenomy.dispatch.catalog import Catalog
from tokenomy.errors import ConfigError

LITELLM = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: os.environ/ANTHROPIC_API_KEY
      timeout: 30
  - model_name: local-llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct
      api_base: http://10.0.0.5:8000/v1
      api_key: sk-literal-secret
    model_info:
      tier: small
  - model_name: azure-gpt
    litellm_params:
      model: azure/gpt-4o
router_settings:
  num_retries: 4
  cooldown_time: 60
  fallbacks:
    - gpt-4o: [claude, azure-gpt]
"""


def test_converts_model_list_fallbacks_and_retries(tmp_path: Path) -> None:
    src = tmp_path / "litellm.yaml"
    src.write_text(LITELLM)
    converted = convert_litellm(src)
    deps = {d["model"]: d for d in converted.config["deployments"]}
    assert set(deps) == {"gpt-4o", "claude", "local-llama"}
    assert deps["gpt-4o"] == {"name": "gpt-4o#0", "provider": "openai", "model": "gpt-4o", "tier": "frontier",
                              "api_key_env": "OPENAI_API_KEY"}
    assert deps["claude"]["provider"] == "anthropic" and deps["claude"]["timeout_s"] == 30
    assert deps["claude"]["upstream_model"] == "claude-sonnet-4-5"
    llama = deps["local-llama"]
    assert (llama["provider"], llama["tier"], llama["base_url"]) == ("vllm", "small", "http://10.0.0.5:8000/v1")
    assert llama["api_key_env"] == "TOKENOMY_KEY_LOCAL_LLAMA"
    assert "sk-literal-secret" not in yaml.safe_dump(converted.config)
    assert converted.config["fallbacks"] == {"gpt-4o": ["claude"]}
    assert converted.config["retry"] == {"max_retries": 4, "cooldown_s": 60}
    assert any("azure" in note for note in converted.notes)

    out = tmp_path / "tokenomy.yaml"
    out.write_text(yaml.safe_dump(converted.config))
    settings = load_settings(str(out), env={})  # the output is a valid tokenomy config
    assert isinstance(settings, Settings) and len(settings.deployments or ()) == 3


def test_not_a_litellm_config(tmp_path: Path) -> None:
    src = tmp_path / "x.yaml"
    src.write_text("server: {}\n")
    with pytest.raises(ConfigError, match="no 'model_list'"):
        convert_litellm(src)


def test_unknown_fallback_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"fallbacks\.small"):
        Catalog([], {"small": ["gpt-9"]})
