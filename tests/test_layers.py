"""The layout shows the design (docs/architecture.md): dependencies flow one way, with no cycles between packages;
nothing below the gateway core imports it; the request-time code imports nothing from the offline tools; the leaves
import nothing of ours. Read from the source (every import, at module level or inside a function)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tokenomy

ROOT = Path(tokenomy.__file__).parent

# what may import what, by layer: cli → api → gateway → services → leaves; the offline tools sit beside the gateway
DOORS = {"cli", "api", "__main__"}
CORE = {"gateway"}
LEAVES = {"errors", "outage", "microbatch", "jsonl", "wire", "config", "pricing", "tokens", "embeddings", "db",
          "promptcache"}
OFFLINE_PACKAGES = {"audit", "plan", "cli"}
OFFLINE_MODULES = {f"tokenomy.routing.{m}" for m in ("train", "selection", "evaluate", "plot", "outcomes")} | {
    f"tokenomy.distill.{m}" for m in ("train", "collect", "tasks", "evaluate", "costs", "promote", "estimate", "lora",
                                      "base_model", "export", "corpora", "demo")}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    name = ".".join(("tokenomy", *parts))
    return name.removesuffix(".__init__")


def _imports() -> dict[str, set[str]]:
    """Every module of ours and the modules of ours it imports (``from a import b`` counts ``a.b`` when that is a
    module)."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    found: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tokenomy"):
                found[name].add(node.module)
                found[name].update(f"{node.module}.{a.name}" for a in node.names
                                   if f"{node.module}.{a.name}" in modules)
            elif isinstance(node, ast.Import):
                found[name].update(a.name for a in node.names if a.name.startswith("tokenomy"))
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tokenomy"


def test_no_cycles_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in _imports().items():
        for target in targets:
            if _package(source) != _package(target) and _package(target) != "tokenomy":
                edges[_package(source)].add(_package(target))

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(f"{a} <-> {b}" for a in list(edges) for b in edges[a] if reaches(b, a))
    assert cycles == []


def test_nothing_below_the_core_imports_it_or_a_door() -> None:
    wrong = sorted(f"{source} imports {target}" for source, targets in _imports().items() for target in targets
                   if _package(source) not in DOORS | CORE and _package(target) in DOORS | CORE)
    assert wrong == []


def test_leaves_import_only_leaves() -> None:
    wrong = sorted(f"{source} imports {target}" for source, targets in _imports().items() for target in targets
                   if _package(source) in LEAVES and _package(target) not in LEAVES | {"tokenomy"})
    assert wrong == []


def test_request_time_code_imports_no_offline_tool() -> None:
    graph = _imports()
    seen, todo, parent = {"tokenomy.api.app"}, ["tokenomy.api.app"], {}
    while todo:
        current = todo.pop()
        for nxt in graph.get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                parent[nxt] = current
                todo.append(nxt)
    offline = sorted(m for m in seen if _package(m) in OFFLINE_PACKAGES or m in OFFLINE_MODULES)
    chains = []
    for module in offline:
        chain = [module]
        while chain[-1] in parent:
            chain.append(parent[chain[-1]])
        chains.append(" <- ".join(chain))
    assert chains == []
    assert "tokenomy.gateway.core" in seen and "tokenomy.routing.serve" in seen  # the walk did reach the runtime
