"""The report window of ``tokenomy spend``, ``/admin/spend``, ``/v1/spend`` and the dashboard: one parser for all."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tokenomy.errors import InvalidRequestError
from tokenomy.ledger.queries import Window

_RELATIVE = re.compile(r"(?P<n>\d{1,9})(?P<unit>[smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now_s: float) -> int:
    """``24h``, ``7d``, ``30m``, an ISO date or datetime (UTC when no zone) → epoch microseconds."""
    match = _RELATIVE.fullmatch(text.strip())
    if match:  # nothing was recorded before 1970: an older start is the same window
        return max(0, int((now_s - int(match["n"]) * _UNIT_S[match["unit"]]) * 1_000_000))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequestError(f"--since {text!r}: use e.g. 24h, 7d or 2026-11-01", param="since") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp() * 1_000_000))


def window_from(since: str, now_s: float) -> Window:
    """From ``since`` up to now (inclusive); a start in the future is an error (the window would be empty)."""
    since_us, until_us = parse_since(since, now_s), int(now_s * 1_000_000) + 1
    if since_us >= until_us:
        start = datetime.fromtimestamp(since_us / 1_000_000, UTC).isoformat(timespec="seconds")
        raise InvalidRequestError(f"--since {since!r} is in the future ({start}): nothing can have been spent "
                                  "since; give a past date or a duration such as 24h or 7d", param="since")
    return Window(since_us=since_us, until_us=until_us)
