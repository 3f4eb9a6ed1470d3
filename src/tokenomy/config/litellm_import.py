"""Convert a LiteLLM proxy config (``model_list``, fallbacks, retry settings) into a tokenomy config.

Keys are never copied: ``api_key: os.environ/NAME`` becomes ``api_key_env: NAME``; a literal key becomes a variable
name to set, with a note. Tiers are not a LiteLLM concept: a known model gets its vendor's tier, anything else
``medium``, with a note naming it so the operator can decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tokenomy.config.vendors import VENDORS
from tokenomy.errors import ConfigError

_PREFIXES = {
    "openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic", "groq": "groq",
    "together_ai": "together", "deepseek": "deepseek", "mistral": "mistral", "fireworks_ai": "fireworks",
    "openrouter": "openrouter", "ollama": "ollama", "ollama_chat": "ollama", "hosted_vllm": "vllm",
    "vllm": "vllm", "llamafile": "openai_compatible", "lm_studio": "openai_compatible",
}
_TIERS = {model: tier for vendor in VENDORS.values() for model, tier in vendor.presets}


@dataclass
class Converted:
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def convert_litellm(path: Path) -> Converted:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read LiteLLM config {path}: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
        raise ConfigError(f"{path}: no 'model_list' list found; is this a LiteLLM proxy config?")
    out = Converted(config={})
    deployments = [d for i, entry in enumerate(data["model_list"]) if (d := _deployment(i, entry, out, path))]
    names = {d["model"] for d in deployments}
    out.config["deployments"] = deployments
    fallbacks = _fallbacks(data, names, out)
    if fallbacks:
        out.config["fallbacks"] = fallbacks
    retry = _retry(data)
    if retry:
        out.config["retry"] = retry
    return out


def _deployment(i: int, entry: Any, out: Converted, path: Path) -> dict[str, Any] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
        raise ConfigError(f"{path}: key 'model_list[{i}]': needs 'model_name' and a 'litellm_params' mapping")
    public = entry.get("model_name")
    params = entry["litellm_params"]
    target = params.get("model")
    if not isinstance(public, str) or not isinstance(target, str):
        raise ConfigError(f"{path}: key 'model_list[{i}]': 'model_name' and 'litellm_params.model' must be strings")
    prefix, _, upstream = target.partition("/")
    if not upstream:
        prefix, upstream = "openai", target
    kind = _PREFIXES.get(prefix)
    if kind is None:
        out.notes.append(f"model_list[{i}] ({public}): provider '{prefix}' is not supported yet; skipped")
        return None
    if params.get("api_base") and kind == "openai":
        kind = "openai_compatible"
    dep: dict[str, Any] = {"name": f"{public}#{i}", "provider": kind, "model": public}
    if upstream != public:
        dep["upstream_model"] = upstream
    dep["tier"] = _tier(public, upstream, entry, out, i)
    if params.get("api_base"):
        dep["base_url"] = params["api_base"]
    key_env = _key_env(params.get("api_key"), public, out, i)
    if key_env:
        dep["api_key_env"] = key_env
    for src, dst in (("timeout", "timeout_s"), ("max_retries", "max_retries"), ("max_parallel_requests",
                                                                                "max_concurrency")):
        if isinstance(params.get(src), int | float):
            dep[dst] = params[src]
    return dep


def _tier(public: str, upstream: str, entry: dict[str, Any], out: Converted, i: int) -> str:
    info = entry.get("model_info")
    if isinstance(info, dict) and info.get("tier") in ("small", "medium", "frontier"):
        return str(info["tier"])
    tier = _TIERS.get(upstream) or _TIERS.get(public)
    if tier:
        return tier
    out.notes.append(f"model_list[{i}] ({public}): tier unknown, set to 'medium'; adjust if needed")
    return "medium"


def _key_env(value: Any, public: str, out: Converted, i: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("os.environ/"):
        return value.removeprefix("os.environ/")
    name = "TOKENOMY_KEY_" + re.sub(r"[^A-Za-z0-9]+", "_", public).upper().strip("_")
    out.notes.append(f"model_list[{i}] ({public}): a literal api_key was not copied; export it as {name}")
    return name


def _fallbacks(data: dict[str, Any], names: set[str], out: Converted) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for section in ("router_settings", "litellm_settings"):
        block = data.get(section)
        rules = block.get("fallbacks") if isinstance(block, dict) else None
        for rule in rules or ():
            if not isinstance(rule, dict):
                continue
            for source, targets in rule.items():
                kept = [t for t in targets if t in names] if isinstance(targets, list) else []
                dropped = set(targets or ()) - set(kept) if isinstance(targets, list) else set()
                if dropped:
                    out.notes.append(f"fallback from {source}: dropped unknown models {sorted(dropped)}")
                if source in names and kept:
                    found.setdefault(source, []).extend(t for t in kept if t not in found.get(source, []))
    return found


def _retry(data: dict[str, Any]) -> dict[str, Any]:
    retry: dict[str, Any] = {}
    for section in ("router_settings", "litellm_settings"):
        block = data.get(section)
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("num_retries"), int):
            retry["max_retries"] = block["num_retries"]
        if isinstance(block.get("cooldown_time"), int | float):
            retry["cooldown_s"] = block["cooldown_time"]
    return retry
