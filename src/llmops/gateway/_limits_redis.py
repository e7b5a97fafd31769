"""Redis backends of budgets and rate limits (``LLMOPS_REDIS_URL``): several gateway processes, one limit.

- ``llmops:budget:{budget_id}:{period_start}``: hash ``spent``, ``reserved`` (nano-dollars), expiring a day after
  its period ends. A reservation is one Lua script over every budget the call is held to: it checks every hard
  limit, then increments ``reserved`` everywhere, or changes nothing. Settling is one script too.
  Settled spend is also written to the database (the durable ledger); a process seeds a counter it has not seen
  from there with ``HSETNX`` (a Redis that lost its data starts from the ledger, not from 0).
- ``llmops:rl:{name}:{window}``: the sliding-window counters of ``gateway.ratelimits`` (two minutes of life).
- ``RedisJoint``: a call's rate-limit windows and budget reservation in ONE script (one round trip): all charged
  and reserved, or nothing.

Fail closed: when Redis cannot be reached a call that needs a check is refused (503 ``storage_unavailable``),
never let through unmetered. Settling retries briefly; a lost settlement keeps its amount reserved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops.core.errors import StorageUnavailableError
from llmops.gateway.budgets import BudgetStore, Line, MemoryCounters
from llmops.gateway.ratelimits import WINDOW_S, Check, Verdict, verdict

_PREFIX = "llmops:"
_RESERVE = """
local amt = tonumber(ARGV[1])
local n = #KEYS
local totals = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  local total = tonumber(v[1] or '0') + tonumber(v[2] or '0')
  local lim = ARGV[1 + i]
  if lim ~= '' and total + amt > tonumber(lim) then return {i} end
  totals[i] = total + amt
end
local out = {0}
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[1])
  local exp = ARGV[1 + n + i]
  if exp ~= '' then redis.call('EXPIREAT', KEYS[i], exp) end
  out[i + 1] = totals[i]
end
return out
"""
_SETTLE = """
for i = 1, #KEYS do
  if tonumber(ARGV[2]) ~= 0 then redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2]) end
  local left = redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[1]))
  if left < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
end
return 1
"""
_ADMIT = """
local nc = tonumber(ARGV[1])
local frac = tonumber(ARGV[2])
local vals = {}
local refused = 0
for i = 1, nc do
  local prev = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local cur = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  vals[2 * i - 1] = prev
  vals[2 * i] = cur
  if refused == 0 and prev * (1 - frac) + cur + tonumber(ARGV[2 + 2 * i]) > tonumber(ARGV[1 + 2 * i]) then
    refused = i
  end
end
local out = {1, refused}
for i = 1, 2 * nc do out[2 + i] = vals[i] end
if refused > 0 then return out end
local base = 2 + 2 * nc
local amt = tonumber(ARGV[base + 1])
local nb = #KEYS - 2 * nc
local totals = {}
for j = 1, nb do
  local v = redis.call('HMGET', KEYS[2 * nc + j], 'spent', 'reserved')
  local total = tonumber(v[1] or '0') + tonumber(v[2] or '0')
  local lim = ARGV[base + 1 + j]
  if lim ~= '' and total + amt > tonumber(lim) then
    out[1] = 2
    out[2] = j
    return out
  end
  totals[j] = total + amt
end
for i = 1, nc do
  redis.call('INCRBY', KEYS[2 * i], ARGV[2 + 2 * i])
  redis.call('EXPIRE', KEYS[2 * i], 150)
end
for j = 1, nb do
  redis.call('HINCRBY', KEYS[2 * nc + j], 'reserved', ARGV[base + 1])
  local exp = ARGV[base + 1 + nb + j]
  if exp ~= '' then redis.call('EXPIREAT', KEYS[2 * nc + j], exp) end
  out[2 + 2 * nc + j] = totals[j]
end
out[1] = 0
out[2] = 0
return out
"""
_SETTLE_ALL = """
local nb = tonumber(ARGV[1])
for i = 1, nb do
  if tonumber(ARGV[3]) ~= 0 then redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3]) end
  local left = redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[2]))
  if left < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
end
for j = nb + 1, #KEYS do
  redis.call('INCRBY', KEYS[j], ARGV[3 + j - nb])
  redis.call('EXPIRE', KEYS[j], 150)
end
return 1
"""
_HIT = """
local frac = tonumber(ARGV[1])
local n = #KEYS / 2
local out = {1}
local ok = 1
for i = 1, n do
  local prev = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local cur = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  out[2 * i] = prev
  out[2 * i + 1] = cur
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  if prev * (1 - frac) + cur + cost > limit then ok = 0 end
end
if ok == 1 then
  for i = 1, n do
    redis.call('INCRBY', KEYS[2 * i], ARGV[2 * i + 1])
    redis.call('EXPIRE', KEYS[2 * i], 150)
  end
end
out[1] = ok
return out
"""


POOL_SIZE = 64  # connections per process; callers beyond it wait (up to POOL_WAIT_S) instead of failing
POOL_WAIT_S = 10.0


def connect(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S)
    return aioredis.Redis(connection_pool=pool)


def unavailable(exc: RedisError) -> StorageUnavailableError:
    """Fail closed: a call the counters cannot admit is refused (503, retryable), never let through unmetered."""
    return StorageUnavailableError(f"limit counters unavailable (Redis): {type(exc).__name__}")


def _counter(budget_id: str, period_start: int) -> str:
    return f"{_PREFIX}budget:{budget_id}:{period_start}"


class RedisCounters:
    """``budgets.Counters`` in Redis; settled spend is also written behind to the database ledger."""

    def __init__(self, url: str, store: BudgetStore) -> None:
        self.redis = connect(url)
        self._reserve = self.redis.register_script(_RESERVE)
        self._settle = self.redis.register_script(_SETTLE)
        self._store = store
        self.ledger = MemoryCounters(store)  # its write-behind batches the database writes
        self._seeded: set[str] = set()

    async def seed(self, lines: Sequence[Line]) -> None:
        for line in lines:
            key = _counter(line.budget_id, line.period_start)
            if key not in self._seeded:
                spent = await asyncio.to_thread(self._store.spent, line.budget_id, line.period_start)
                await self.redis.hsetnx(key, "spent", spent)  # type: ignore[misc]
                self._seeded.add(key)

    async def reserve(self, lines: Sequence[Line], amount: int) -> tuple[int, list[int]]:
        keys = [_counter(line.budget_id, line.period_start) for line in lines]
        args = [
            str(amount),
            *("" if line.limit is None else str(line.limit) for line in lines),
            *("" if line.expires_at is None else str(line.expires_at) for line in lines),
        ]
        try:
            await self.seed(lines)
            out = [int(v) for v in await self._reserve(keys=keys, args=args)]
        except RedisError as exc:
            raise unavailable(exc) from exc
        return out[0], out[1:]

    async def settle(self, lines: Sequence[Line], reserved: int, actual: int) -> None:
        keys = [_counter(line.budget_id, line.period_start) for line in lines]
        for attempt in range(3):  # a lost settlement would hold the reservation: retry briefly
            try:
                await self._settle(keys=keys, args=[str(reserved), str(actual)])
                break
            except RedisError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        if actual:
            await self.ledger.settle(lines, 0, actual)  # durable ledger, written behind

    async def usage(self, budget_id: str, period_start: int) -> tuple[int, int]:
        key = _counter(budget_id, period_start)
        try:
            spent, reserved = await self.redis.hmget(key, ["spent", "reserved"])  # type: ignore[misc]
        except RedisError as exc:
            raise unavailable(exc) from exc
        if spent is None:
            return await asyncio.to_thread(self._store.spent, budget_id, period_start), int(reserved or 0)
        return int(spent), int(reserved or 0)

    async def aclose(self) -> None:
        await self.ledger.aclose()
        await self.redis.aclose()


class RedisWindows:
    """``ratelimits.Windows`` in Redis: one script checks every counter of a call and increments them all."""

    def __init__(self, url: str) -> None:
        self.redis = connect(url)
        self._hit = self.redis.register_script(_HIT)

    async def hit(self, checks: Sequence[Check], now_s: float) -> Verdict:
        w = int(now_s // WINDOW_S)
        keys = [k for c in checks for k in (f"{_PREFIX}rl:{c.name}:{w - 1}", f"{_PREFIX}rl:{c.name}:{w}")]
        frac = (now_s % WINDOW_S) / WINDOW_S
        args = [repr(frac), *(str(v) for c in checks for v in (c.limit, c.cost))]
        try:
            out = [int(v) for v in await self._hit(keys=keys, args=args)]
        except RedisError as exc:
            raise unavailable(exc) from exc
        values = [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(len(checks))]
        result = verdict(checks, values, now_s)
        if out[0] == 1 and not result.ok:  # float edge: the script decided; report no allowance left
            return Verdict(True, [0] * len(checks), reset_s=WINDOW_S - now_s % WINDOW_S)
        if out[0] == 0 and result.ok:
            return Verdict(False, [], 0, 1.0)
        return result

    async def adjust(self, name: str, delta: int, now_s: float) -> None:
        key = f"{_PREFIX}rl:{name}:{int(now_s // WINDOW_S)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, delta)
            pipe.expire(key, 150)
            await pipe.execute()

    async def aclose(self) -> None:
        await self.redis.aclose()


class RedisJoint:
    """``ratelimits.Joint`` in one Lua script (one round trip): every window checked, every hard budget checked,
    then all charged and reserved, or nothing."""

    def __init__(self, counters: RedisCounters) -> None:
        self._admit = counters.redis.register_script(_ADMIT)  # the counters' connection pool (closed with them)
        self._settle = counters.redis.register_script(_SETTLE_ALL)
        self._counters = counters

    async def settle(
        self, lines: Sequence[Line], reserved: int, actual: int, corrections: Sequence[tuple[str, int]], now_s: float
    ) -> None:
        w = int(now_s // WINDOW_S)
        keys = [_counter(ln.budget_id, ln.period_start) for ln in lines]
        keys += [f"{_PREFIX}rl:{name}:{w}" for name, _ in corrections]
        args = [str(len(lines)), str(reserved), str(actual), *(str(d) for _, d in corrections)]
        for attempt in range(3):  # a lost settlement would hold the reservation: retry briefly
            try:
                await self._settle(keys=keys, args=args)
                break
            except RedisError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        if actual and lines:
            await self._counters.ledger.settle(lines, 0, actual)  # durable ledger, written behind

    async def admit(
        self, checks: Sequence[Check], now_s: float, lines: Sequence[Line], amount: int
    ) -> tuple[Verdict, int, list[int]]:
        w = int(now_s // WINDOW_S)
        keys = [k for c in checks for k in (f"{_PREFIX}rl:{c.name}:{w - 1}", f"{_PREFIX}rl:{c.name}:{w}")]
        keys += [_counter(line.budget_id, line.period_start) for line in lines]
        args = [str(len(checks)), repr((now_s % WINDOW_S) / WINDOW_S)]
        args += [str(v) for c in checks for v in (c.limit, c.cost)]
        args += [str(amount), *("" if ln.limit is None else str(ln.limit) for ln in lines)]
        args += ["" if ln.expires_at is None else str(ln.expires_at) for ln in lines]
        try:
            if lines:
                await self._counters.seed(lines)
            out = [int(v) for v in await self._admit(keys=keys, args=args)]
        except RedisError as exc:
            raise unavailable(exc) from exc
        values = [(out[2 + 2 * i], out[3 + 2 * i]) for i in range(len(checks))]
        result = verdict(checks, values, now_s)
        if out[0] == 1:  # the script refused a window (it decided: floats aside, the same formula)
            if result.ok:
                result = Verdict(False, [], out[1] - 1, 1.0)
            return result, 0, []
        if out[0] == 2:
            return (result if result.ok else Verdict(True, [0] * len(checks))), out[1], []
        if not result.ok:
            result = Verdict(True, [0] * len(checks), reset_s=WINDOW_S - now_s % WINDOW_S)
        return result, 0, out[2 + 2 * len(checks) :]
