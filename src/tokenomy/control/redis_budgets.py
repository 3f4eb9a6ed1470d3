"""Budget counters shared by every replica: Redis, one Lua script per reservation and per settlement (atomic).

Per scope and period: a hash ``<prefix>budget:<scope>:<period>`` (``spent``, ``reserved`` in pico-USD), the
reservations held (``…:held``, request id → amount) and their deadlines (``…:due``, a sorted set). A reservation
whose replica died before settling is released when its deadline (``reservation_ttl_s``) passes, by the next
reservation on that scope. Amounts travel as decimal strings and are added with ``HINCRBY`` (exact 64-bit integers);
the budget comparison runs on Lua's doubles, exact below 2^53 pico-USD (about $9,000) and within a few pico-USD
above it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tokenomy.control.budgets import Outcome, Reservation, Scope
from tokenomy.control.periods import period_ttl_s
from tokenomy.errors import StoreUnavailableError

_RELEASE = """
local function release(h, a, z, id)
  local held = redis.call('HGET', a, id)
  if held then
    redis.call('HDEL', a, id)
    if held ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. held) end
  end
  redis.call('ZREM', z, id)
end
"""

RESERVE = _RELEASE + """
local amount = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[5])
local waiting = nil
for i = 1, n do
  local h, a, z = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do release(h, a, z, id) end
  local spent_s = redis.call('HGET', h, 'spent') or '0'
  local spent = tonumber(spent_s)
  local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0')
  local budget = tonumber(ARGV[4 + 2 * i])
  if spent >= budget then return {'refuse', i, spent_s} end
  if not (spent + reserved + amount <= budget or reserved <= 0) and waiting == nil then
    waiting = {'wait', i, spent_s}
  end
end
if waiting then return waiting end
for i = 1, n do
  local h, a, z = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HINCRBY', h, 'reserved', ARGV[1])
  redis.call('HSET', a, ARGV[4], ARGV[1])
  redis.call('ZADD', z, now + tonumber(ARGV[3]), ARGV[4])
  local ttl = tonumber(ARGV[5 + 2 * i])
  if ttl > 0 then
    redis.call('EXPIRE', h, ttl); redis.call('EXPIRE', a, ttl); redis.call('EXPIRE', z, ttl)
  end
end
return {'ok', 0, '0'}
"""

SETTLE = _RELEASE + """
for i = 1, tonumber(ARGV[3]) do
  local h, a, z = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  release(h, a, z, ARGV[1])
  redis.call('HINCRBY', h, 'spent', ARGV[2])
end
return 1
"""

# Rebuild from the ledger only where Redis has no counter: a live counter already holds every replica's spend.
PRIME = """
for i = 1, #KEYS do
  redis.call('HSETNX', KEYS[i], 'spent', ARGV[i])
  redis.call('HSETNX', KEYS[i], 'reserved', '0')
end
return 1
"""


class BudgetRedisError(StoreUnavailableError):
    code = "budget_store_unavailable"


class RedisBudgetStore:
    def __init__(self, url: str, prefix: str, *, reservation_ttl_s: float) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = prefix
        self._ttl_us = int(reservation_ttl_s * 1_000_000)
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)
        self._prime = self._redis.register_script(PRIME)

    def _hash(self, scope: str, period: str) -> str:
        return f"{self._prefix}budget:{scope}:{period}"

    def _keys(self, counters: Iterable[tuple[str, str]]) -> list[str]:
        keys: list[str] = []
        for scope, period in counters:
            base = self._hash(scope, period)
            keys += [base, base + ":held", base + ":due"]
        return keys

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys=keys, args=args)
        except RedisError as exc:
            raise BudgetRedisError(f"budget store (redis) unavailable: {exc}") from exc

    async def try_reserve(self, rid: str, scopes: Sequence[Scope], amount_pusd: int, at_us: int,
                          ttl_s: float | None = None) -> Outcome:
        ttl_us = self._ttl_us if ttl_s is None else int(ttl_s * 1_000_000)
        args: list[Any] = [str(amount_pusd), str(at_us), str(ttl_us), rid, str(len(scopes))]
        for scope in scopes:
            args += [str(scope.budget_pusd), str(period_ttl_s(scope.period) or 0)]
        verdict, index, spent = await self._call(self._reserve, self._keys(s.counter(at_us) for s in scopes), args)
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict == "ok":
            return Outcome("ok")
        scope = scopes[int(index) - 1]
        return Outcome("refuse" if verdict == "refuse" else "wait", scope.name, int(spent), scope.budget_pusd)

    async def settle(self, reservation: Reservation, actual_pusd: int) -> None:
        await self._call(self._settle, self._keys(reservation.counters),
                         [reservation.id, str(actual_pusd), str(len(reservation.counters))])

    async def prime(self, counters: Iterable[tuple[str, str, int]]) -> None:
        items = list(counters)
        if items:
            await self._call(self._prime, [self._hash(s, p) for s, p, _ in items], [str(v) for _, _, v in items])

    async def read(self, counters: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
        from redis.exceptions import RedisError

        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope, period in counters:
                    pipe.hmget(self._hash(scope, period), "spent", "reserved")
                rows = await pipe.execute()
        except RedisError as exc:
            raise BudgetRedisError(f"budget store (redis) unavailable: {exc}") from exc
        return [(int(s or 0), int(r or 0)) for s, r in rows]

    async def aclose(self) -> None:
        await self._redis.aclose()
