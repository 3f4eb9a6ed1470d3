"""One pooled aiohttp session per provider: opened on first use inside the running loop (nothing at import or
construction time), reopened if it was closed, closed by ``aclose``. Shared by every HTTP provider."""

from __future__ import annotations

import aiohttp


class SessionPool:
    def __init__(self, max_connections: int | None = None, headers: dict[str, str] | None = None) -> None:
        self._limit = max_connections or 0  # 0: aiohttp's "no limit"
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
