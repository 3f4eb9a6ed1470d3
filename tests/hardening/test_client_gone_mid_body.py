"""A client that hangs up in the middle of its body is one quiet line, not a traceback (issue 20): on 939b14d each
one logged about 70 lines at ERROR."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest
from tests.hardening.parts import JSON, chat_body, echo_settings, request

from servers import run_gateway
from tokenomy.testing.fault_upstream import FaultUpstream


def test_hang_up_mid_body_logs_no_error(fault: tuple[str, FaultUpstream], caplog: pytest.LogCaptureFixture) -> None:
    base, _ = fault
    caplog.set_level(logging.INFO)
    with run_gateway(echo_settings(base)) as url:
        parts = urlsplit(url)
        for _ in range(3):
            with socket.create_connection((parts.hostname, parts.port)) as sock:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b'{"model": "e')
                time.sleep(0.2)
        time.sleep(0.5)
        assert request(url + "/chat/completions", "POST", chat_body(), JSON)[0] == 200  # and it goes on serving
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert sum("left before its body was read" in r.getMessage() for r in caplog.records) == 3
