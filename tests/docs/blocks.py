"""The fenced code blocks of README.md and docs/*.md, each with what the doc says to do with it.

A block's kind comes from its language (``bash``, ``python``, ``yaml``: run or parsed) or from a marker, an HTML
comment on the line before the fence (a blank line between is allowed)::

    <!-- doc-test: skip: REASON -->           not run; the reason is required (a long or external command)
    <!-- doc-test: paid-key -->               a config for a paid key: checked, and served against stand-ins
    <!-- doc-test: synopsis -->               command lines: every command and --flag must exist
    <!-- doc-test: output: COMMAND -->        sample output of COMMAND: its first line must be what COMMAND prints
    <!-- doc-test: text -->                   not code (a layout, a formula, an error message quoted)

A fence with no language and no marker is an error: every block says how it is tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--\s*doc-test:\s*(?P<kind>[a-z-]+)(?::\s*(?P<detail>.*?))?\s*-->")
KINDS = {"skip", "paid-key", "synopsis", "output", "text"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    marker: str | None
    detail: str | None
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence[1]))
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = MARKER.search(lines[before]) if before >= 0 else None
        found.append(Block(path, i + 1, fence[2], marker["kind"] if marker else None,
                           marker["detail"] if marker else None, "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [b for path in documents() for b in blocks(path)]


def kind(block: Block) -> str:
    """What to do with the block; raises ValueError when the doc does not say."""
    if block.marker is not None:
        if block.marker not in KINDS:
            raise ValueError(f"{block.id}: unknown doc-test marker {block.marker!r} (known: {sorted(KINDS)})")
        if block.marker in ("skip", "output") and not block.detail:
            raise ValueError(f"{block.id}: doc-test {block.marker} needs a detail (the reason, or the command)")
        return block.marker
    if block.language in ("bash", "sh", "shell"):
        return "bash"
    if block.language in ("python", "yaml"):
        return block.language
    raise ValueError(f"{block.id}: a ``` block without a language needs a doc-test marker (see tests/docs/blocks.py)")


def commands(text: str) -> list[str]:
    """Shell lines with continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out
