"""Deployments that just failed rest for a while, so requests go to healthy ones first."""

from __future__ import annotations

import time
from collections.abc import Callable


class Cooldowns:
    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._until: dict[str, float] = {}

    def mark_failed(self, deployment: str) -> None:
        self._until[deployment] = self._clock() + self._cooldown_s

    def mark_ok(self, deployment: str) -> None:
        self._until.pop(deployment, None)

    def is_cooling(self, deployment: str) -> bool:
        until = self._until.get(deployment)
        if until is None:
            return False
        if self._clock() >= until:
            del self._until[deployment]
            return False
        return True
