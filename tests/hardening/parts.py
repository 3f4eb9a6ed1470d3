"""What the hardening tests share: a gateway over the fault upstream's echo model, and a plain HTTP client that sends
exactly the headers it is given (the SDKs add their own)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from tokenomy.config.settings import ControlConfig, DeploymentConfig, LocalConfig, RetryConfig, Settings

MASTER = "sk-hardening-master"


def echo_settings(base: str, **extra: Any) -> Settings:
    """One OpenAI-compatible deployment ``echo`` (tier small) on the fault upstream; no local tier."""
    deployments = [DeploymentConfig(name="echo", provider="openai_compatible", model="echo", tier="small",
                                    upstream_model="echo", base_url=base)]
    return Settings(deployments=deployments, local=LocalConfig(enabled=False), env_providers=False,
                    retry=RetryConfig(max_retries=0), **extra)


def keyed(base: str, **extra: Any) -> Settings:
    return echo_settings(base, control=ControlConfig(master_key=MASTER), **extra)


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly ``headers`` (plus Host, unless given); returns status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                        skip_host="host" in {k.lower() for k in (headers or {})}, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def chat_body(model: str = "echo", text: str = "hello", **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], **extra}).encode()


JSON = {"content-type": "application/json"}
