"""Redis store for the exact cache (``LLMOPS_REDIS_URL``): several gateway replicas share one cache.

Layout (every key carries the project, so no lookup can cross projects):

- ``llmops:cache:e:{project}:{sha256}``: hash ``body``, ``cost``, ``alias``, ``exp`` (ns), with a Redis expiry;
- ``llmops:cache:i:{project}:{alias}``: sorted set of that route's keys by expiry (counts; purge);
- ``llmops:cache:a:{project}``: set of the project's aliases.

A write is one Lua script (entry + expiry + index, atomically).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

_PREFIX = "llmops:cache:"
_PUT = """
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'cost', ARGV[2], 'alias', ARGV[5], 'exp', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[7])
redis.call('SADD', KEYS[3], ARGV[5])
return 1
"""
_PURGE = """
local n = 0
for _, alias in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local idx = ARGV[1] .. 'i:' .. ARGV[2] .. ':' .. alias
  for _, key in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    n = n + redis.call('DEL', ARGV[1] .. 'e:' .. ARGV[2] .. ':' .. key)
  end
  redis.call('DEL', idx)
end
redis.call('DEL', KEYS[1])
return n
"""


def _entry(project_id: str, key: str) -> str:
    return f"{_PREFIX}e:{project_id}:{key}"


class RedisExactCacheStore:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._put = self._redis.register_script(_PUT)
        self._purge = self._redis.register_script(_PURGE)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def find(self, project_id: str, key: str, now_ns: int) -> tuple[dict[str, Any], float | None] | None:
        body, cost, exp = await self._redis.hmget(_entry(project_id, key), ["body", "cost", "exp"])
        if body is None or exp is None or int(exp) <= now_ns:
            return None
        return orjson.loads(body), (float(cost) if cost else None)

    async def put(
        self,
        project_id: str,
        key: str,
        *,
        alias: str,
        body: dict[str, Any],
        cost_usd: float | None,
        now_ns: int,
        expires_ns: int,
    ) -> None:
        keys = [_entry(project_id, key), f"{_PREFIX}i:{project_id}:{alias}", f"{_PREFIX}a:{project_id}"]
        cost = "" if cost_usd is None else repr(float(cost_usd))
        args: list[bytes | str | int] = [
            orjson.dumps(body),
            cost,
            expires_ns // 1_000_000,
            key,
            alias,
            expires_ns,
            now_ns // 1_000_000,
        ]
        await self._put(keys=keys, args=args)

    async def purge(self, project_id: str) -> int:
        return int(await self._purge(keys=[f"{_PREFIX}a:{project_id}"], args=[_PREFIX, project_id]))

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        members = await self._redis.smembers(f"{_PREFIX}a:{project_id}")  # type: ignore[misc]  # untyped awaitable
        aliases = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        out: dict[str, int] = {}
        for alias in aliases:
            n = await self._redis.zcount(f"{_PREFIX}i:{project_id}:{alias}", now_ns // 1_000_000, "+inf")
            if n:
                out[alias] = int(n)
        return out
