"""One log line per outage of a store, not one per request: ``OutageLog.failed`` logs the first failure and then at
most once per ``interval_s`` (with how many failures it folded in); ``recovered`` logs the return once."""

from __future__ import annotations

import logging
import time


class OutageLog:
    def __init__(self, what: str, logger: logging.Logger, *, interval_s: float = 60.0,
                 clock: object = time.monotonic) -> None:
        self.what = what
        self._log = logger
        self._interval_s = interval_s
        self._clock = clock
        self.down_since: float | None = None
        self._last_line = 0.0
        self._folded = 0
        self.lines = 0  # lines written (tests count them)

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def failed(self, reason: str, consequence: str) -> None:
        now = self._now()
        if self.down_since is None:
            self.down_since = now
        elif now - self._last_line < self._interval_s:
            self._folded += 1
            return
        folded = f" ({self._folded} more failures since the last line)" if self._folded else ""
        self._log.warning("%s unavailable, %s: %s%s", self.what, consequence, reason, folded)
        self._last_line, self._folded = now, 0
        self.lines += 1

    def recovered(self) -> None:
        if self.down_since is None:
            return
        self._log.warning("%s is back after %.0f s", self.what, self._now() - self.down_since)
        self.down_since = None
        self._folded = 0
        self.lines += 1
