"""``tokenomy config check --online``: can the gateway reach what its configuration names? Each probe returns
None when it can, else one line saying what went wrong. Blocking, with short timeouts: a command's check, never the
request path."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping

from tokenomy.config.settings import DeploymentConfig
from tokenomy.config.vendors import VENDORS
from tokenomy.errors import TokenomyError

TIMEOUT_S = 5.0


def reach_database(url: str) -> str | None:
    """The ledger's database answers a query (SQLite: the file opens, or can be created)."""
    from tokenomy.db.engine import masked_url, open_database

    try:
        database = open_database(url, pooled=False)
        try:
            with database.read() as tx:
                tx.execute("SELECT 1").fetchone()
        finally:
            database.close()
    except TokenomyError as exc:
        return f"cannot open {masked_url(url)}: {exc.message}"
    return None


def reach_redis(url: str) -> str | None:
    from redis import Redis
    from redis.exceptions import RedisError

    from tokenomy.db.engine import masked_url

    client = Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        client.ping()
    except RedisError as exc:
        return f"cannot reach Redis at {masked_url(url)}: {exc}"
    finally:
        client.close()
    return None


def reach_upstream(dep: DeploymentConfig, env: Mapping[str, str]) -> str | None:
    """The deployment's endpoint lists its models with the configured key (a 401/403 is a rejected key)."""
    vendor = VENDORS[dep.provider]
    base = (dep.base_url or vendor.base_url or "").rstrip("/")
    key_env = dep.api_key_env or vendor.key_env
    key = env.get(key_env) if key_env else None
    headers = dict(dep.headers)
    if dep.provider == "anthropic":
        base = base if base.endswith("/v1") else base + "/v1"
        headers |= {"anthropic-version": "2023-06-01", **({"x-api-key": key} if key else {})}
    elif key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{base}/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return f"{base} refused the key in {key_env or 'the headers'} (HTTP {exc.code})"
        if exc.code == 404:  # a server without a model list still answered
            return None
        return f"{base}/models answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"cannot reach {base}: {getattr(exc, 'reason', exc)}"
    return None
