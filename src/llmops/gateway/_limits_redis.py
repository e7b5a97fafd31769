"""Redis backends of budgets and rate limits (``LLMOPS_REDIS_URL``): several gateway processes, one limit.

- ``llmops:budget:{budget_id}:{period_start}``: hash ``spent``, ``reserved`` (nano-dollars), expiring a day after
  its period ends; ``…:held``: a sorted set of the reservations in flight, member ``{reservation_id}:{amount}``,
  score its deadline (epoch seconds: admission time + ``reservation_ttl_s``). A reservation whose process died
  (killed, OOM, lost network) is swept by the next admission of that budget once its deadline has passed:
  its amount leaves ``reserved`` and the headroom comes back without waiting for the period counter to expire.
  Settling removes the member first, so a reservation is given back once only (settled, or swept, never both).
- ``llmops:rl:{name}:{window}``: the sliding-window counters of ``gateway.ratelimits`` (two minutes of life).
- ONE Lua script (``_LIMITS``, run by SHA with ``EVALSHA`` on a pipelined connection of its own,
  :class:`PipelinedScript`) does everything a call needs, in one round trip:
  the settlements of earlier calls of this process that are waiting to be sent, then every rate-limit window
  and every hard budget checked (after sweeping expired reservations), then all charged and reserved, or
  nothing. Settlements are queued (``RedisJoint.settle`` returns at once) and ride along with the next
  admission of this process; when none comes within the same event-loop turn a flusher task sends them (one
  script call for every queued settlement). So a busy process makes one round trip per call, not two.
- Settled spend is also written to the database (the durable ledger, behind); a counter this process has not
  seen yet is seeded from there inside the same script (``HSETNX``: a Redis that lost its data starts from the
  ledger, not from 0).

Fail closed: when Redis cannot be reached a call that needs a check is refused (503 ``storage_unavailable``),
never let through unmetered; its carried settlements are queued again. A settlement that cannot be sent after
three tries is dropped with a warning: its reservation is swept when its deadline passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import StorageUnavailableError
from llmops.gateway.budgets import BudgetStore, Line, MemoryCounters
from llmops.gateway.ratelimits import WINDOW_S, Check, Verdict, verdict

log = logging.getLogger("llmops.gateway.limits")

_PREFIX = "llmops:"
RESERVATION_TTL_S = 900.0  # longer than any call (upstream timeouts × retries × fallbacks); see docs/budgets.md
# Numbers travel as strings: Lua prints a large number as "1e+15", which INCRBY would refuse.
_LIMITS = """
local s = cjson.decode(ARGV[1])
for _, e in ipairs(s.settle) do
  local h, z = KEYS[e[1]], KEYS[e[2]]
  if redis.call('ZREM', z, e[3]) == 1 then
    if redis.call('HINCRBY', h, 'reserved', '-' .. e[4]) < 0 then redis.call('HSET', h, 'reserved', 0) end
  end
  if e[5] ~= '0' then redis.call('HINCRBY', h, 'spent', e[5]) end
  if e[6] ~= '' then redis.call('EXPIREAT', h, e[6]) end
end
for _, e in ipairs(s.corr) do
  redis.call('INCRBY', KEYS[e[1]], e[2])
  redis.call('EXPIRE', KEYS[e[1]], 150)
end
local out = {0, 0}
local frac = tonumber(s.frac)
local refused = 0
for i, w in ipairs(s.win) do
  local prev = tonumber(redis.call('GET', KEYS[w[1]]) or '0')
  local cur = tonumber(redis.call('GET', KEYS[w[2]]) or '0')
  out[1 + 2 * i] = prev
  out[2 + 2 * i] = cur
  if refused == 0 and prev * (1 - frac) + cur + tonumber(w[4]) > tonumber(w[3]) then refused = i end
end
if refused > 0 then
  out[1] = 1
  out[2] = refused
  return out
end
local base = 2 + 2 * #s.win
local amt = tonumber(s.amt)
local totals = {}
for j, b in ipairs(s.bud) do
  local h, z = KEYS[b[1]], KEYS[b[2]]
  if b[5] ~= '' then redis.call('HSETNX', h, 'spent', b[5]) end
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', s.now)
  if #gone > 0 then
    for _, m in ipairs(gone) do redis.call('HINCRBY', h, 'reserved', '-' .. string.match(m, ':(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', s.now)
    if tonumber(redis.call('HGET', h, 'reserved')) < 0 then redis.call('HSET', h, 'reserved', 0) end
  end
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  local total = tonumber(v[1] or '0') + tonumber(v[2] or '0')
  if b[3] ~= '' and total + amt > tonumber(b[3]) then
    out[1] = 2
    out[2] = j
    return out
  end
  totals[j] = total + amt
end
for _, w in ipairs(s.win) do
  redis.call('INCRBY', KEYS[w[2]], w[4])
  redis.call('EXPIRE', KEYS[w[2]], 150)
end
local deadline = tonumber(s.now) + tonumber(s.ttl)
for j, b in ipairs(s.bud) do
  local h, z = KEYS[b[1]], KEYS[b[2]]
  redis.call('HINCRBY', h, 'reserved', s.amt)
  redis.call('ZADD', z, deadline, s.rid .. ':' .. s.amt)
  if b[4] ~= '' then
    redis.call('EXPIREAT', h, b[4])
    redis.call('EXPIREAT', z, b[4])
  end
  out[base + j] = totals[j]
end
return out
"""
_USAGE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone > 0 then
  for _, m in ipairs(gone) do redis.call('HINCRBY', KEYS[1], 'reserved', '-' .. string.match(m, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  if tonumber(redis.call('HGET', KEYS[1], 'reserved')) < 0 then redis.call('HSET', KEYS[1], 'reserved', 0) end
end
return redis.call('HMGET', KEYS[1], 'spent', 'reserved')
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


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


@dataclass
class _Settlement:
    """A reservation to settle (``actual`` 0: release) and token-window corrections, waiting to be sent."""

    lines: Sequence[Line]
    reservation_id: str
    reserved: int
    actual: int
    corrections: Sequence[tuple[str, int]]
    window: int


@dataclass
class _Spec:
    """The ``_LIMITS`` script's argument (JSON) and the keys it names by 1-based index."""

    now_s: float
    ttl_s: float
    keys: list[str] = field(default_factory=list)
    settle: list[list[Any]] = field(default_factory=list)
    corr: list[list[Any]] = field(default_factory=list)
    win: list[list[Any]] = field(default_factory=list)
    bud: list[list[Any]] = field(default_factory=list)
    frac: float = 0.0
    amount: int = 0
    reservation_id: str = ""
    _index: dict[str, int] = field(default_factory=dict)

    def key(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            self.keys.append(name)
            i = self._index[name] = len(self.keys)
        return i

    def add_settlement(self, st: _Settlement) -> None:
        for ln in st.lines:
            h = _counter(ln.budget_id, ln.period_start)
            member = f"{st.reservation_id}:{st.reserved}"
            self.settle.append(
                [self.key(h), self.key(h + ":held"), member, str(st.reserved), str(st.actual), _opt(ln.expires_at)]
            )
        for name, delta in st.corrections:
            self.corr.append([self.key(f"{_PREFIX}rl:{name}:{st.window}"), str(delta)])

    def add_windows(self, checks: Sequence[Check], now_s: float) -> None:
        w = int(now_s // WINDOW_S)
        self.frac = (now_s % WINDOW_S) / WINDOW_S
        for c in checks:
            prev, cur = self.key(f"{_PREFIX}rl:{c.name}:{w - 1}"), self.key(f"{_PREFIX}rl:{c.name}:{w}")
            self.win.append([prev, cur, str(c.limit), str(c.cost)])

    def add_budgets(self, lines: Sequence[Line], amount: int, reservation_id: str, seeds: dict[str, int]) -> None:
        self.amount, self.reservation_id = amount, reservation_id
        for ln in lines:
            h = _counter(ln.budget_id, ln.period_start)
            seed = seeds.get(h)
            self.bud.append([self.key(h), self.key(h + ":held"), _opt(ln.limit), _opt(ln.expires_at), _opt(seed)])

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "now": repr(self.now_s),
                "ttl": repr(self.ttl_s),
                "settle": self.settle,
                "corr": self.corr,
                "win": self.win,
                "bud": self.bud,
                "frac": repr(self.frac),
                "amt": str(self.amount),
                "rid": self.reservation_id,
            }
        )


# --- the hot path's own connection ------------------------------------------------------------------------------
class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from ``buf[pos:]``: (value, position after it); errors are returned as ``ResponseError``."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    if kind == b":":
        return int(line), end + 2
    if kind == b"+":
        return line, end + 2
    if kind == b"-":
        text = line.decode(errors="replace")
        return (NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2
        if len(buf) < end + 2 + size + 2:
            raise _Incomplete
        return buf[end + 2 : end + 2 + size], end + 4 + size
    if kind == b"*":
        count, pos, items = int(line), end + 2, []
        for _ in range(max(count, 0)):
            item, pos = _parse(buf, pos)
            items.append(item)
        return (items if count >= 0 else None), pos
    raise ResponseError(f"unexpected RESP reply type {kind!r}")


def _command(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        data = p.encode() if isinstance(p, str) else p
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Pipe(asyncio.Protocol):
    """One Redis connection with pipelining: concurrent callers write their commands at once and Redis answers in
    order, each reply resolving the oldest waiter. No pool to acquire, no per-command health check: the
    admission's one script call costs the round trip and little else (redis-py's pooled path costs ~0.1-0.2 ms
    more per call on this machine, docs/benchmarks.md)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        pos = 0
        while pos < len(self._buf) and self._waiters:
            try:
                value, pos = _parse(self._buf, pos)
            except _Incomplete:
                break
            waiter = self._waiters.popleft()
            if not waiter.done():
                if isinstance(value, ResponseError):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        self._buf = self._buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        if self.transport is None or self.transport.is_closing():
            raise RedisConnectionError("Redis connection closed")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.transport.write(payload)
        return waiter


class PipelinedScript:
    """``EVALSHA`` of one script over a :class:`_Pipe` (``SCRIPT LOAD`` on ``NOSCRIPT``), reconnecting when the
    connection was lost. Plain ``redis://`` and ``unix://`` URLs; others (TLS) go through redis-py instead."""

    def __init__(self, url: str, script: str, *, timeout_s: float = POOL_WAIT_S) -> None:
        self._opts = parse_url(url)
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script, usedforsecurity=False).hexdigest()
        self._timeout = timeout_s
        self._pipe: _Pipe | None = None
        self._connecting = asyncio.Lock()

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith(("redis://", "unix://"))

    async def _connected(self) -> _Pipe:
        pipe = self._pipe
        if pipe is not None and pipe.transport is not None and not pipe.transport.is_closing():
            return pipe
        async with self._connecting:
            if self._pipe is None or self._pipe.transport is None or self._pipe.transport.is_closing():
                self._pipe = await self._connect()
            return self._pipe

    async def _connect(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                if "path" in self._opts:
                    _, pipe = await loop.create_unix_connection(_Pipe, self._opts["path"])
                else:
                    host, port = self._opts.get("host", "localhost"), int(self._opts.get("port", 6379))
                    _, pipe = await loop.create_connection(_Pipe, host, port)
                    sock = pipe.transport.get_extra_info("socket") if pipe.transport else None
                    if sock is not None:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                setup = []
                if self._opts.get("password"):
                    user = self._opts.get("username")
                    setup.append(_command("AUTH", *([user] if user else []), self._opts["password"]))
                if int(self._opts.get("db") or 0):
                    setup.append(_command("SELECT", str(self._opts["db"])))
                for cmd in setup:
                    await pipe.send(cmd)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from exc
        return pipe

    async def __call__(self, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        cmd = _command("EVALSHA", self._sha, str(len(keys)), *keys, *args)
        try:
            async with asyncio.timeout(self._timeout):
                pipe = await self._connected()
                try:
                    return await pipe.send(cmd)
                except NoScriptError:
                    await pipe.send(_command("SCRIPT", "LOAD", self._script))
                    return await pipe.send(cmd)
        except TimeoutError as exc:
            self.close()  # replies may still come: a fresh connection keeps requests and replies in step
            raise RedisTimeoutError("Redis did not answer in time") from exc

    def close(self) -> None:
        if self._pipe is not None and self._pipe.transport is not None:
            self._pipe.transport.close()
        self._pipe = None


class RedisCounters:
    """``budgets.Counters`` in Redis; settled spend is also written behind to the database ledger."""

    def __init__(
        self,
        url: str,
        store: BudgetStore,
        *,
        clock: Clock | None = None,
        reservation_ttl_s: float = RESERVATION_TTL_S,
    ) -> None:
        self.redis = connect(url)
        self._limits: Any = (
            PipelinedScript(url, _LIMITS) if PipelinedScript.supports(url) else self.redis.register_script(_LIMITS)
        )
        self._usage = self.redis.register_script(_USAGE)
        self._store = store
        self._clock = clock or SystemClock()
        self.reservation_ttl_s = reservation_ttl_s
        self.ledger = MemoryCounters(store)  # its write-behind batches the database writes
        self._seeded: set[str] = set()

    def spec(self, now_s: float | None = None) -> _Spec:
        return _Spec(self._clock.now_ns() / 1e9 if now_s is None else now_s, self.reservation_ttl_s)

    async def seeds(self, lines: Sequence[Line]) -> dict[str, int]:
        """Settled spend from the database of counters this process has not used yet (sent with ``HSETNX``)."""
        out: dict[str, int] = {}
        for line in lines:
            key = _counter(line.budget_id, line.period_start)
            if key not in self._seeded:
                out[key] = await asyncio.to_thread(self._store.spent, line.budget_id, line.period_start)
        return out

    async def run(self, spec: _Spec, seeded: dict[str, int] | None = None) -> list[int]:
        """One ``EVALSHA`` of ``_LIMITS`` (redis-py loads the script on ``NOSCRIPT``). Raises ``RedisError``."""
        out = [int(v) for v in await self._limits(keys=spec.keys, args=[spec.encode()])]
        if seeded:
            self._seeded.update(seeded)
        return out

    async def write_ledger(self, settlements: Sequence[_Settlement]) -> None:
        for st in settlements:
            if st.actual and st.lines:
                await self.ledger.settle(st.lines, 0, st.actual)  # durable ledger, written behind

    async def reserve(self, lines: Sequence[Line], amount: int, *, reservation_id: str = "") -> tuple[int, list[int]]:
        spec = self.spec()
        try:
            seeds = await self.seeds(lines)
            spec.add_budgets(lines, amount, reservation_id or "anon", seeds)
            out = await self.run(spec, seeds)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return (out[1], []) if out[0] else (0, out[2:])

    async def settle(self, lines: Sequence[Line], reserved: int, actual: int, *, reservation_id: str = "") -> None:
        st = _Settlement(lines, reservation_id or "anon", reserved, actual, (), 0)
        await self.send_settlements([st])

    async def send_settlements(self, batch: Sequence[_Settlement]) -> None:
        """Settle now (one script call), retrying briefly; raises ``RedisError`` after three failures."""
        spec = self.spec()
        for st in batch:
            spec.add_settlement(st)
        for attempt in range(3):  # a lost settlement holds its reservation until the deadline: retry briefly
            try:
                await self.run(spec)
                break
            except RedisError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        await self.write_ledger(batch)

    async def usage(self, budget_id: str, period_start: int) -> tuple[int, int]:
        key = _counter(budget_id, period_start)
        try:
            spent, reserved = await self._usage(keys=[key, key + ":held"], args=[repr(self._clock.now_ns() / 1e9)])
        except RedisError as exc:
            raise unavailable(exc) from exc
        if spent is None:
            return await asyncio.to_thread(self._store.spent, budget_id, period_start), int(reserved or 0)
        return int(spent), int(reserved or 0)

    async def aclose(self) -> None:
        await self.ledger.aclose()
        if isinstance(self._limits, PipelinedScript):
            self._limits.close()
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
    """``ratelimits.Joint`` in one script call (one round trip): the queued settlements of this process, then every
    window and every hard budget checked, then all charged and reserved, or nothing."""

    def __init__(self, counters: RedisCounters) -> None:
        self._counters = counters
        self._pending: list[_Settlement] = []
        self._flusher: asyncio.Task[None] | None = None

    async def settle(
        self,
        lines: Sequence[Line],
        reserved: int,
        actual: int,
        corrections: Sequence[tuple[str, int]],
        now_s: float,
        *,
        reservation_id: str = "",
    ) -> None:
        """Queue the settlement: the next admission carries it, or the flusher sends it in the next loop turn."""
        self._pending.append(
            _Settlement(lines, reservation_id or "anon", reserved, actual, corrections, int(now_s // WINDOW_S))
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0)  # an admission starting in this loop turn carries the queue instead
        try:
            await self.flush()
        except RedisError:  # task boundary: the reservations are swept at their deadline
            log.warning("settling reservations in Redis failed; they are released at their deadline", exc_info=True)

    async def flush(self) -> None:
        """Send every queued settlement now (one script call per batch)."""
        while self._pending:
            batch, self._pending = self._pending, []
            await self._counters.send_settlements(batch)

    async def admit(
        self,
        checks: Sequence[Check],
        now_s: float,
        lines: Sequence[Line],
        amount: int,
        *,
        reservation_id: str = "",
    ) -> tuple[Verdict, int, list[int]]:
        spec = self._counters.spec(now_s)
        carried: list[_Settlement] = []
        try:
            seeds = await self._counters.seeds(lines) if lines else {}
            carried, self._pending = self._pending, []
            for st in carried:
                spec.add_settlement(st)
            spec.add_windows(checks, now_s)
            spec.add_budgets(lines, amount, reservation_id or "anon", seeds)
            out = await self._counters.run(spec, seeds)
        except RedisError as exc:
            self._pending[:0] = carried  # not applied (a reply lost after it ran: spend counts twice, the safe side)
            raise unavailable(exc) from exc
        if carried:
            await self._counters.write_ledger(carried)
        return _decide(checks, now_s, out)


def _decide(checks: Sequence[Check], now_s: float, out: list[int]) -> tuple[Verdict, int, list[int]]:
    """(verdict, refusing budget, budget totals) from the script's answer."""
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
