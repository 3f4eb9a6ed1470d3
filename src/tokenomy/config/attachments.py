"""Adapters attached to configured deployments from outside the config file: ``tokenomy distill promote --to
DEPLOYMENT`` puts a promoted LoRA student here, and the gateway adds it to that deployment's ``adapters`` at start
(``providers.registry.resolve_deployments``), so it is routable by name on the shared base.

The file is ``adapters.json`` beside the distill registry (``<data dir>/distill/adapters.json``)::

    {"format": "tokenomy-adapters/1",
     "attached": [{"deployment": "local/smollm2-135m-instruct", "by": "distill promote topic",
                   "adapter": {"name": "distill/topic", "path": "/students/topic/adapter.gguf"}}]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec

from tokenomy.config.adapters import AdapterConfig
from tokenomy.errors import ConfigError

FORMAT = "tokenomy-adapters/1"


def attachments_path(registry: str | None, home: Path) -> Path:
    """Beside the distill registry (``distill.registry``, default ``<data dir>/distill/students.json``)."""
    folder = Path(registry).expanduser().parent if registry else home / "distill"
    return folder / "adapters.json"


def read_attachments(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read attached adapters {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("attached"), list):
        raise ConfigError(f"{path}: not a tokenomy adapters file (format {FORMAT!r})")
    return list(doc["attached"])


def attached_adapters(path: Path) -> dict[str, list[AdapterConfig]]:
    """Deployment name -> the adapters attached to it."""
    found: dict[str, list[AdapterConfig]] = {}
    for entry in read_attachments(path):
        try:
            adapter = msgspec.convert(entry.get("adapter"), AdapterConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{path}: an attached adapter is malformed: {exc}") from exc
        found.setdefault(str(entry.get("deployment")), []).append(adapter)
    return found


def attach(path: Path, deployment: str, adapter: AdapterConfig, by: str) -> None:
    """Attach ``adapter`` to ``deployment``, replacing an earlier adapter of the same name (replaced atomically)."""
    entries = [e for e in read_attachments(path) if (e.get("adapter") or {}).get("name") != adapter.name]
    entries.append({"deployment": deployment, "by": by, "adapter": msgspec.to_builtins(adapter)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "attached": entries}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
