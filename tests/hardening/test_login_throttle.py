"""``/ui/login`` throttles wrong guesses (issue 20): on 939b14d it took unlimited wrong master keys at full speed."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.hardening.parts import MASTER, keyed, request

from servers import run_gateway
from tokenomy.testing.fault_upstream import FaultUpstream

PER_CLIENT = 5  # wrong guesses one address may make at once
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _login(root: str, key: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = request(root + "/ui/login", "POST", urlencode({"master_key": key}).encode(), FORM)
    return status, headers


def test_wrong_guesses_are_throttled(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(keyed(base)) as url:
        root = url.removesuffix("/v1")
        statuses = [_login(root, f"guess-{i}")[0] for i in range(PER_CLIENT + 5)]
        assert statuses[:PER_CLIENT] == [401] * PER_CLIENT
        assert set(statuses[PER_CLIENT:]) == {429}
        status, headers = _login(root, MASTER)  # even the right key waits: guessing cannot go on meanwhile
        assert status == 429 and int(headers["retry-after"]) >= 1

