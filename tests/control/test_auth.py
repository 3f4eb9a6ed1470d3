"""Keys and auth on a running gateway (official openai SDK): who gets in, what a key may do, what the ledger
records for it, and what it can see of other tenants (nothing)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.control.parts import MASTER, admin, priced

from servers import run_gateway
from tokenomy.config.settings import (
    CacheConfig,
    ControlConfig,
    ExactCacheConfig,
    LocalConfig,
    ServerConfig,
    Settings,
)
from tokenomy.testing.fault_upstream import FaultUpstream

SECRET_PROMPT = "the launch code is " + uuid.uuid4().hex


@pytest.fixture(scope="module")
def gateway(fault: tuple[str, FaultUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base, _ = fault
    home = tmp_path_factory.mktemp("auth")
    settings = Settings(deployments=[priced("echo", base, "echo"), priced("other", base, "echo"),
                                     priced("broken", base, "error-500", max_retries=0)],
                        local=LocalConfig(enabled=False), env_providers=False, home=str(home),
                        server=ServerConfig(max_body_bytes=4096),
                        control=ControlConfig(master_key=MASTER),
                        cache=CacheConfig(exact=ExactCacheConfig(mode="deterministic", store="memory")))
    with run_gateway(settings) as url:
        yield url, home


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def _new_key(url: str, **fields: Any) -> dict[str, Any]:
    status, body = admin(url, "POST", "/admin/keys", {"name": "k-" + uuid.uuid4().hex[:6], **fields})
    assert status == 201, body
    return body


def _ask(client: openai.OpenAI, model: str = "echo", text: str = "hi", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": text}],
                                                            **kw)


def test_requests_without_a_valid_key_get_401_in_openai_format(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    for key in ("", "unused", "tk-" + "x" * 43, MASTER + "x"):
        with pytest.raises(openai.AuthenticationError) as info:
            _ask(_client(url, key or "none"))
        body = info.value.body
        assert isinstance(body, dict) and body["code"] == "invalid_api_key" and body["type"] == "invalid_request_error"
        assert key not in body["message"] or key == ""
    assert _ask(_client(url, MASTER)).parse().choices[0].message.content == "echo: hi"


def test_virtual_key_works_by_bearer_and_by_x_api_key(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    key = _new_key(url)["key"]
    assert key.startswith("tk-") and len(key) >= 3 + 43
    assert _ask(_client(url, key)).parse().choices[0].message.content == "echo: hi"
    request = urllib.request.Request(f"{url}/chat/completions", method="POST", headers={
        "x-api-key": key, "content-type": "application/json"},
        data=json.dumps({"model": "echo", "messages": [{"role": "user", "content": "yo"}]}).encode())
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == "echo: yo"


def test_key_is_stored_only_as_a_hash(gateway: tuple[str, Path]) -> None:
    url, home = gateway
    created = _new_key(url)
    raw = (home / "ledger.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("ledger.db-*"))
    assert created["key"].encode() not in raw
    with sqlite3.connect(home / "ledger.db") as db:
        row = db.execute("SELECT key_hash, last4 FROM api_keys WHERE id = ?", (created["id"],)).fetchone()
    assert len(row[0]) == 64 and row[1] == created["key"][-4:]
    listed = admin(url, "GET", "/admin/keys")[1]["data"]
    assert all("key" not in k and "key_hash" not in k for k in listed)


def test_revoked_and_expired_keys_are_refused(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    revoked = _new_key(url)
    assert admin(url, "POST", f"/admin/keys/{revoked['id']}/revoke")[1]["status"] == "revoked"
    # a past expiry is refused at creation (issue 23); a key that expires a second from now is refused after it
    status, body = admin(url, "POST", "/admin/keys", {"name": "k-past", "expires": "2020-01-01"})
    assert status == 400 and "is in the past" in body["error"]["message"]
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expired = _new_key(url, expires=soon.isoformat())
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    for key, why in ((revoked["key"], "revoked"), (expired["key"], "expired")):
        with pytest.raises(openai.AuthenticationError, match=why):
            _ask(_client(url, key))


def test_allowed_models_are_enforced(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    key = _new_key(url, models=["echo"])["key"]
    assert _ask(_client(url, key)).parse().choices[0].message.content == "echo: hi"
    with pytest.raises(openai.PermissionDeniedError, match="may not use model 'other'"):
        _ask(_client(url, key), "other")


def test_key_team_and_tags_are_copied_into_the_ledger_row(gateway: tuple[str, Path]) -> None:
    url, home = gateway
    created = _new_key(url, team="research", tags={"cost_centre": "cc-42", "project": "atlas"})
    rid = _ask(_client(url, created["key"])).headers["x-request-id"]
    time.sleep(0.3)
    with sqlite3.connect(home / "ledger.db") as db:
        row = db.execute("SELECT key_id, tenant, tags FROM requests WHERE id = ?", (rid,)).fetchone()
    assert row[0] == created["id"] and row[1] == "research"
    assert json.loads(row[2]) == {"cost_centre": "cc-42", "project": "atlas"}


def test_exact_cache_is_isolated_between_tenants(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    text = "cache me " + uuid.uuid4().hex
    a1 = _new_key(url, team="team-a")["key"]
    a2 = _new_key(url, team="team-a")["key"]
    b = _new_key(url, team="team-b")["key"]
    solo = _new_key(url)["key"]
    status = [_ask(_client(url, k), text=text, temperature=0).headers["x-tokenomy-cache"] for k in (a1, a2, b, solo)]
    assert status == ["miss", "hit", "miss", "miss"]  # a team shares its answers; nobody else sees them


def test_a_key_sees_only_its_own_spend(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    mine, theirs = _new_key(url), _new_key(url)
    for _ in range(2):
        _ask(_client(url, mine["key"]), text=uuid.uuid4().hex)
    _ask(_client(url, theirs["key"]), text=uuid.uuid4().hex)
    time.sleep(0.3)
    status, own = admin(url, "GET", "/v1/spend?since=1h", key=mine["key"])
    assert status == 200 and own["requests"] == 2
    status, everything = admin(url, "GET", "/admin/spend?since=1h")
    assert status == 200 and everything["requests"] >= 3
    status, me = admin(url, "GET", "/v1/key", key=mine["key"])
    assert me["id"] == mine["id"] and "key" not in me


def test_admin_api_accepts_only_the_master_key(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    key = _new_key(url)["key"]
    for path, method in (("/admin/keys", "GET"), ("/admin/keys", "POST"), ("/admin/spend", "GET"),
                         ("/admin/teams", "GET")):
        for who in (key, "", "wrong"):
            status, body = admin(url, method, path, {"name": "x"} if method == "POST" else None, key=who)
            assert status == 401 and body["error"]["code"] == "invalid_api_key", (path, who)


def test_admin_body_size_is_limited(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    status, body = admin(url, "POST", "/admin/keys", {"name": "big", "tags": {"x": "y" * 10_000}})
    assert status == 413 and body["error"]["code"] == "request_too_large"


def test_cors_is_off_by_default(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    request = urllib.request.Request(f"{url}/chat/completions", method="OPTIONS", headers={
        "origin": "https://evil.example", "access-control-request-method": "POST"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            headers = resp.headers
    except urllib.error.HTTPError as exc:
        headers = exc.headers
    assert "access-control-allow-origin" not in {k.lower() for k in headers}


def test_no_key_or_prompt_text_in_logs_at_the_default_level(gateway: tuple[str, Path],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    url, _ = gateway
    caplog.set_level(logging.INFO)
    created = _new_key(url)
    client = _client(url, created["key"])
    _ask(client, text=SECRET_PROMPT)
    with pytest.raises(openai.APIStatusError):
        _ask(client, "broken", text=SECRET_PROMPT)
    with pytest.raises(openai.AuthenticationError):
        _ask(_client(url, created["key"] + "x"), text=SECRET_PROMPT)
    admin(url, "POST", f"/admin/keys/{created['key']}/revoke")
    with pytest.raises(openai.AuthenticationError):
        _ask(client, text=SECRET_PROMPT)
    time.sleep(0.3)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "broken" in logged  # the failure was logged, without its prompt
    assert SECRET_PROMPT not in logged and created["key"] not in logged and MASTER not in logged
