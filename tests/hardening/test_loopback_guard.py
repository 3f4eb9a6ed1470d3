"""A gateway without a master key trusts no web page (issue 20): on 939b14d a ``Content-Type: text/plain`` POST with
``Host: attacker.example`` was served (and spent through the environment's provider keys) — the preconditions of
CSRF and DNS rebinding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.hardening.parts import JSON, MASTER, chat_body, echo_settings, keyed, request

from servers import run_gateway
from tokenomy.config.settings import ServerConfig
from tokenomy.testing.fault_upstream import FaultUpstream


@pytest.fixture(scope="module")
def open_url(fault: tuple[str, FaultUpstream]) -> Iterator[str]:
    base, _ = fault
    with run_gateway(echo_settings(base)) as url:
        yield url


def _chat(url: str, headers: dict[str, str]) -> tuple[int, str]:
    status, _, body = request(url + "/chat/completions", "POST", chat_body(), headers)
    return status, body.decode()


def test_a_rebound_host_is_refused(open_url: str) -> None:
    status, body = _chat(open_url, {"host": "attacker.example", "content-type": "text/plain"})
    assert status == 403 and "foreign_origin" in body
    assert _chat(open_url, {"host": "attacker.example:4000", **JSON})[0] == 403
    assert request(open_url + "/models", headers={"host": "attacker.example"})[0] == 403  # reads too


def test_a_simple_cross_site_post_is_refused(open_url: str) -> None:
    status, body = _chat(open_url, {"content-type": "text/plain"})
    assert status == 415 and "application/json" in body
    assert _chat(open_url, {"content-type": "application/x-www-form-urlencoded"})[0] == 415


def test_a_foreign_origin_is_refused(open_url: str) -> None:
    assert _chat(open_url, {"origin": "https://attacker.example", **JSON})[0] == 403
    assert _chat(open_url, {"origin": "null", **JSON})[0] == 403


def test_loopback_clients_are_served(open_url: str) -> None:
    assert _chat(open_url, JSON)[0] == 200
    assert _chat(open_url, {"host": "localhost:4000", **JSON})[0] == 200
    assert _chat(open_url, {"origin": "http://localhost:5173", **JSON})[0] == 200
    assert _chat(open_url, {"host": "[::1]:4000", "content-type": "application/json; charset=utf-8"})[0] == 200


def test_configured_hosts_are_served(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(echo_settings(base, server=ServerConfig(allowed_hosts=["gateway.internal"]))) as url:
        assert _chat(url, {"host": "gateway.internal", **JSON})[0] == 200
        assert _chat(url, {"host": "attacker.example", **JSON})[0] == 403


def test_a_master_key_gateway_needs_no_guard(fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with run_gateway(keyed(base)) as url:
        headers = {"host": "gateway.example.com", "authorization": f"Bearer {MASTER}", **JSON}
        assert _chat(url, headers)[0] == 200
