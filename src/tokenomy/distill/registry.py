"""Promoted students: the file ``distill promote`` writes and the gateway reads, and whose ``state`` it updates.

States: ``shadow`` (a sample of the task's requests also goes to the student; the teacher answers; agreement is
recorded) → ``live`` once ``min_checks`` shadow comparisons agree at least ``min_agreement`` (the student answers
when its confidence ≥ ``threshold``, the rest cascade to the normal route; ``spot_check`` of its answers are
compared with the teacher's) → ``demoted`` when the last ``window`` spot-checks (at least ``min_spot_checks``) agree
less than ``min_agreement``. A demoted student serves nothing until it is promoted again. Every change is appended
to ``history`` with the figures that caused it. The file is replaced atomically.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokenomy.errors import DistillError

FORMAT = "tokenomy-distill-registry/1"
STATES = ("shadow", "live", "demoted")
_LOCK = threading.Lock()


@dataclass
class Promotion:
    task: str
    path: str
    where: str
    kind: str
    rule: str
    min_agreement: float
    threshold: float
    shadow_sample: float = 0.25
    spot_check: float = 0.05
    min_checks: int = 50
    min_spot_checks: int = 20
    window: int = 200
    state: str = "shadow"
    gpu_hour_usd: str | None = None  # the student's CPU price, as a PriceOverride for its ledger rows
    tokens_per_s: str | None = None
    serve_on: str | None = None  # promoted --to this deployment: served there as an adapter (distill/attach.py)
    promoted_at: int = field(default_factory=lambda: int(time.time()))
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deployment(self) -> str:
        return f"distill/{self.task}"

    def move(self, state: str, **figures: Any) -> None:
        self.state = state
        self.history.append({"at": int(time.time()), "state": state, **figures})


def registry_path(configured: str | None, home: Path) -> Path:
    return Path(configured).expanduser() if configured else home / "distill" / "students.json"


def load_registry(path: Path) -> list[Promotion]:
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise DistillError(f"{path}: not a tokenomy distill registry (format {doc.get('format')!r})")
        promotions = [Promotion(**entry) for entry in doc.get("students") or ()]
    except (OSError, ValueError, TypeError) as exc:
        raise DistillError(f"cannot read the distill registry {path}: {exc}") from exc
    for p in promotions:
        if p.state not in STATES:
            raise DistillError(f"{path}: task {p.task!r} has unknown state {p.state!r}")
    return promotions


def save_registry(path: Path, promotions: list[Promotion]) -> None:
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        doc = {"format": FORMAT, "students": [asdict(p) for p in promotions]}
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def upsert(path: Path, promotion: Promotion) -> list[Promotion]:
    """Add ``promotion``, replacing any earlier one for the same task."""
    promotions = [p for p in load_registry(path) if p.task != promotion.task] + [promotion]
    save_registry(path, promotions)
    return promotions
