"""Every module imports in an empty environment, and importing does no work: no model, ML runtime, server or
network client is loaded or opened at import time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tokenomy

HEAVY = ("llama_cpp", "onnxruntime", "numpy", "tokenizers", "uvicorn", "granian", "anthropic", "openai", "tiktoken",
         "redis", "yoyo")

_PROBE = """
import importlib, json, pkgutil, sys, threading
import tokenomy
names = sorted(m.name for m in pkgutil.walk_packages(tokenomy.__path__, "tokenomy.") if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules), "threads": threading.active_count()}))
"""


def test_all_modules_import_with_empty_environment_and_do_nothing() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True, timeout=120, cwd=Path(tokenomy.__file__).parent.parent, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["modules"]) > 30
    assert "tokenomy.api.app" in report["modules"] and "tokenomy.providers.local_llama" in report["modules"]
    loaded_heavy = [m for m in HEAVY if m in report["loaded"]]
    assert loaded_heavy == [], f"imported at module level: {loaded_heavy}"
    assert report["threads"] == 1
