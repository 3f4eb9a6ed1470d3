"""What each provider kind defaults to: base URL, key variable, and the models it contributes when only its key is
set in the environment.

The OpenAI-compatible vendors differ only in these facts, so they are rows of one table rather than one file each;
a vendor that needs different code (Anthropic, the local tier) has its own module.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenomy.config.settings import DeploymentConfig, Tier


@dataclass(frozen=True, slots=True)
class Vendor:
    kind: str
    base_url: str | None
    key_env: str | None
    # (model, tier) joined automatically when key_env is set and the config lists no deployments
    presets: tuple[tuple[str, Tier], ...] = ()


VENDORS: dict[str, Vendor] = {v.kind: v for v in (
    Vendor("openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
           (("gpt-4.1-nano", "small"), ("gpt-4o-mini", "medium"), ("gpt-4.1-mini", "medium"),
            ("gpt-4o", "frontier"), ("gpt-4.1", "frontier"))),
    Vendor("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY",
           (("claude-haiku-4-5", "medium"), ("claude-sonnet-4-5", "frontier"))),
    Vendor("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
           (("llama-3.1-8b-instant", "small"), ("llama-3.3-70b-versatile", "medium"))),
    Vendor("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
           (("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "small"),
            ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "medium"))),
    Vendor("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", (("deepseek-chat", "frontier"),)),
    Vendor("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY",
           (("mistral-small-latest", "medium"), ("mistral-large-latest", "frontier"))),
    Vendor("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    Vendor("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    Vendor("ollama", "http://127.0.0.1:11434/v1", None),
    Vendor("openai_compatible", None, None),
    Vendor("vllm", None, None),
    Vendor("sglang", None, None),
    Vendor("llamacpp", None, None),
)}


def env_deployments(env: dict[str, str] | None) -> list[DeploymentConfig]:
    """Deployments for every vendor whose key is in ``env`` (the embedded default's 'keys join their tier')."""
    found: list[DeploymentConfig] = []
    for vendor in VENDORS.values():
        if not vendor.key_env or not (env or {}).get(vendor.key_env):
            continue
        for model, tier in vendor.presets:
            found.append(DeploymentConfig(name=f"{vendor.kind}/{model}", provider=vendor.kind,  # type: ignore[arg-type]
                                          model=model, tier=tier))
    return found
