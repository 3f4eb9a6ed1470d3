"""/metrics (issue 20): label values only from configured names (20 requests naming unique 2 MB models grew it to
839 MB on 939b14d), and, with a master key set, readable only with the master key or the metrics key."""

from __future__ import annotations

import uuid

from tests.hardening.parts import JSON, MASTER, chat_body, echo_settings, request

from servers import run_gateway
from tokenomy.config.settings import ControlConfig
from tokenomy.testing.fault_upstream import FaultUpstream


def _metrics(root: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    status, _, body = request(root + "/metrics", headers=headers)
    return status, body.decode()


def test_unknown_model_names_become_other(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(echo_settings(base)) as url:
        root = url.removesuffix("/v1")
        assert request(url + "/chat/completions", "POST", chat_body(), JSON)[0] == 200
        _, before = _metrics(root)
        names = [f"no-such-model-{uuid.uuid4().hex}-" + "x" * 20_000 for _ in range(20)]
        for name in names:
            assert request(url + "/chat/completions", "POST", chat_body(name), JSON)[0] == 404
        _, after = _metrics(root)
    assert not any(name[:40] in after for name in names)
    assert 'model="other"' in after and 'model="echo"' in after
    assert len(after) < len(before) + 5_000  # a few new series for "other", not 20 x 20 KB of names


def test_metrics_need_the_master_key_when_one_is_set(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(echo_settings(base, control=ControlConfig(master_key=MASTER))) as url:
        root = url.removesuffix("/v1")
        assert _metrics(root)[0] == 401
        assert _metrics(root, {"authorization": "Bearer wrong"})[0] == 401
        status, text = _metrics(root, {"authorization": f"Bearer {MASTER}"})
        assert status == 200 and "tokenomy_ledger_backlog" in text


def test_a_scrape_only_metrics_key_reads_metrics_and_nothing_else(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    control = ControlConfig(master_key=MASTER, metrics_key="scrape-only")
    with run_gateway(echo_settings(base, control=control)) as url:
        scrape = {"authorization": "Bearer scrape-only"}
        assert _metrics(url.removesuffix("/v1"), scrape)[0] == 200
        assert request(url + "/chat/completions", "POST", chat_body(), {**JSON, **scrape})[0] == 401


def test_metrics_stay_open_without_a_master_key(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(echo_settings(base)) as url:
        assert _metrics(url.removesuffix("/v1"))[0] == 200

