"""The HTTP server's own limits, as ``tokenomy serve`` runs it (issue 20): on 939b14d a 1 MB header was accepted,
partial headers were held open and a body that stopped coming held its connection for minutes."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tests.hardening.parts import JSON, chat_body, request

from servers import free_port, start_serve
from tokenomy.testing.fault_upstream import FaultUpstream

HEADER_TIMEOUT_S = 10.0  # the default of server.header_timeout_s


@contextlib.contextmanager
def _serve(tmp_path: Path, base: str, extra: str = "") -> Iterator[str]:
    config = tmp_path / "tokenomy.yaml"
    config.write_text("local: {enabled: false}\nenv_providers: false\nembeddings: {enabled: false}\n"
                      f"deployments:\n  - {{name: echo, provider: openai_compatible, model: echo, "
                      f"base_url: '{base}'}}\n" + extra)
    port = free_port()
    proc = start_serve(config, port, {**os.environ, "TOKENOMY_HOME": str(tmp_path / "home")})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def _closed_after(sock: socket.socket, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (at most ``limit_s``), and what it sent before."""
    began = time.monotonic()
    sock.settimeout(limit_s)
    got = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            got += chunk
        return time.monotonic() - began, got
    return limit_s, got


def test_header_size_and_deadline(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with _serve(tmp_path, base) as root:
        host, port = "127.0.0.1", int(root.rsplit(":", 1)[1])
        status, _, _ = request(root + "/v1/chat/completions", "POST", chat_body(), {**JSON, "x-big": "a" * 1_000_000})
        assert status == 431
        assert request(root + "/v1/chat/completions", "POST", chat_body(), JSON)[0] == 200
        partial = socket.create_connection((host, port))
        silent = socket.create_connection((host, port))
        partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        took, answer = _closed_after(partial, HEADER_TIMEOUT_S + 8)
        assert took < HEADER_TIMEOUT_S + 5 and answer.startswith(b"HTTP/1.1 408")
        took, _ = _closed_after(silent, 5)  # opened at the same time: its deadline has passed as well
        assert took < 5


def test_a_stalled_body_is_cut(tmp_path: Path, fault: tuple[str, FaultUpstream]) -> None:
    base, _ = fault
    with _serve(tmp_path, base, "server: {body_idle_timeout_s: 1}\n") as root:
        sock = socket.create_connection(("127.0.0.1", int(root.rsplit(":", 1)[1])))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5000\r\n\r\n{\"model\": ")
        took, _ = _closed_after(sock, 30)
        assert took < 5
