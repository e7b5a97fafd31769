"""Budgets (USD per project, key, end user or tag; per day, month or in total) enforced by reservation.

Before a call goes upstream its worst-case cost is reserved atomically against every budget that applies
(``spent + reserved + worst <= limit`` for each hard budget, all or nothing); after the call the reservation is
settled to the real cost; a call that fails before any token was produced releases it. A stream that breaks or a
client that leaves mid-stream is settled to what was consumed (its tokens, estimated when the upstream sent no
usage), never to 0. Checks read counters (:class:`Counters`), never spans.

- worst case = input-token bound (UTF-8 bytes of the messages and tools as JSON: a token is at least one byte, and
  the JSON's keys and quotes cover the chat template's role markers) × input price + (``max_completion_tokens`` or
  ``max_tokens`` or the deployment's ``context_window`` or ``LLMOPS_LIMITS_DEFAULT_CONTEXT_TOKENS``) × output
  price, the highest over the alias's deployments. A model with no known price reserves
  ``LLMOPS_LIMITS_UNKNOWN_PRICE_RESERVE_USD`` and settles at that (never skipped, never 0). Free models (price 0,
  local providers) consume nothing and are never refused by a budget.
- No bypass: admin keys are held to every budget unless the budget says ``exempt_admin``.
- Counters live in this process (:class:`MemoryCounters`, settled spend written behind to the database) or in
  Redis (``_limits_redis.RedisCounters``, Lua scripts) when ``LLMOPS_REDIS_URL`` is set, so several ``llmops serve``
  processes enforce one limit. Budget definitions are read from the database and cached per project for
  ``LLMOPS_LIMITS_CONFIG_TTL_S`` (another replica's new budget applies after that delay at most).

Amounts are counted in integer nano-dollars so that ``spent <= limit`` holds exactly, in every backend.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import BudgetExceededError, InvalidInputError, NotFoundError
from llmops.core.ids import new_id

log = logging.getLogger("llmops.gateway.limits")

Scope = Literal["project", "key", "user", "tag"]
Period = Literal["day", "month", "total"]
Mode = Literal["hard", "soft"]
NANO = 1_000_000_000  # counter units per USD


def to_units(usd: float) -> int:
    """USD → integer nano-dollars, rounded up (a reservation is never smaller than the price)."""
    return max(0, math.ceil(usd * NANO - 1e-6))


def to_usd(units: int) -> float:
    return round(units / NANO, 9)


@dataclass(frozen=True)
class Budget:
    budget_id: str
    project_id: str
    name: str
    scope: Scope
    subject: str  # key id, end-user id or tag; "" for the project
    period: Period
    limit_usd: float
    mode: Mode
    exempt_admin: bool
    created_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_id": self.budget_id,
            "name": self.name,
            "scope": self.scope,
            "subject": self.subject or None,
            "period": self.period,
            "limit_usd": self.limit_usd,
            "mode": self.mode,
            "exempt_admin": self.exempt_admin,
            "created_at": self.created_ns // 1_000_000_000,
        }


def period_bounds(period: Period, now_ns: int) -> tuple[int, int | None]:
    """(start, end) in epoch seconds (UTC) of the period holding ``now_ns``; ``total`` is (0, None)."""
    if period == "total":
        return 0, None
    now = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
    if period == "day":
        start = calendar.timegm((now.year, now.month, now.day, 0, 0, 0))
        return start, start + 86_400
    start = calendar.timegm((now.year, now.month, 1, 0, 0, 0))
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return start, calendar.timegm((year, month, 1, 0, 0, 0))


class BudgetStore(Protocol):
    """Budget definitions and settled spend (the database; see ``_limits_sql``). Synchronous: called in a thread."""

    def insert_budget(self, budget: Budget) -> None: ...

    def list_budgets(self, project_id: str) -> list[Budget]: ...

    def find_budget(self, project_id: str, budget_id: str) -> Budget | None: ...

    def delete_budget(self, project_id: str, budget_id: str) -> bool: ...

    def spent(self, budget_id: str, period_start: int) -> int: ...

    def add_spend(self, amounts: dict[tuple[str, int], int]) -> None: ...


@dataclass(frozen=True)
class Line:
    """One budget counter a reservation touches: ``limit`` None for a soft budget (never refuses)."""

    budget_id: str
    period_start: int
    limit: int | None
    expires_at: int | None  # epoch seconds after which the counter may be dropped (None: never)


class Counters(Protocol):
    """Atomic spend/reservation counters (in-process or Redis), in nano-dollars."""

    async def reserve(self, lines: Sequence[Line], amount: int, *, reservation_id: str = "") -> tuple[int, list[int]]:
        """All-or-nothing: 0 and each line's ``spent + reserved`` after; or the 1-based index of the first hard
        line that would go over its limit (nothing changed). ``reservation_id`` names the hold (Redis keeps one
        entry per reservation, with a deadline, so a dead process's holds are swept)."""
        ...

    async def settle(self, lines: Sequence[Line], reserved: int, actual: int, *, reservation_id: str = "") -> None: ...

    async def usage(self, budget_id: str, period_start: int) -> tuple[int, int]:
        """(spent, reserved) of one counter."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """Counters of this process (one event loop: a check and its update run with no ``await`` between them).
    The first use of a counter reads its settled spend from the database; settled spend is written behind, in
    batches, by one task (``aclose`` drains it)."""

    def __init__(self, store: BudgetStore, *, flush_interval_s: float = 0.25) -> None:
        self._store = store
        self._values: dict[tuple[str, int], list[int]] = {}  # -> [spent, reserved]
        self._pending: dict[tuple[str, int], int] = {}
        self._writer: asyncio.Task[None] | None = None
        self._interval = flush_interval_s  # batches the writes: one thread hop per interval, not per call
        self._closing = asyncio.Event()

    async def preload(self, lines: Sequence[Line]) -> None:
        """Read the settled spend of counters this process has not used yet (a thread: database I/O)."""
        for line in lines:
            k = (line.budget_id, line.period_start)
            if k not in self._values:
                spent = await asyncio.to_thread(self._store.spent, *k)
                self._values.setdefault(k, [spent, 0])

    async def reserve(self, lines: Sequence[Line], amount: int, *, reservation_id: str = "") -> tuple[int, list[int]]:
        await self.preload(lines)  # in-process holds die with the process: no per-reservation entry needed
        return self.take(lines, amount)

    def take(self, lines: Sequence[Line], amount: int) -> tuple[int, list[int]]:
        """``reserve`` on preloaded counters, synchronously (so a caller can combine it with other checks)."""
        values = [self._values[(line.budget_id, line.period_start)] for line in lines]
        for i, (line, v) in enumerate(zip(lines, values, strict=True), start=1):
            if line.limit is not None and v[0] + v[1] + amount > line.limit:
                return i, []
        for v in values:
            v[1] += amount
        return 0, [v[0] + v[1] for v in values]

    async def settle(self, lines: Sequence[Line], reserved: int, actual: int, *, reservation_id: str = "") -> None:
        for line in lines:
            k = (line.budget_id, line.period_start)
            v = self._values.setdefault(k, [0, reserved])
            v[0] += actual
            v[1] = max(0, v[1] - reserved)
            if actual:
                self._pending[k] = self._pending.get(k, 0) + actual
        if self._pending and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        if not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), timeout=self._interval)
            except TimeoutError:
                pass
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                await asyncio.to_thread(self._store.add_spend, batch)
            except Exception:  # task boundary: keep the amounts for the next try, log with context
                log.warning("writing settled spend failed; will retry", exc_info=True)
                for k, v in batch.items():
                    self._pending[k] = self._pending.get(k, 0) + v
                await asyncio.sleep(1.0)

    async def usage(self, budget_id: str, period_start: int) -> tuple[int, int]:
        v = self._values.get((budget_id, period_start))
        if v is None:
            return await asyncio.to_thread(self._store.spent, budget_id, period_start), 0
        return v[0], v[1]

    async def aclose(self) -> None:
        self._closing.set()
        if self._writer is not None:
            await self._writer


@dataclass
class BudgetSpec:
    name: str
    scope: Scope
    subject: str | None
    period: Period
    limit_usd: float
    mode: Mode = "hard"
    exempt_admin: bool = False


class BudgetService:
    """Budget CRUD and the reservation use cases. Definitions are cached per project (``config_ttl_s``)."""

    def __init__(
        self,
        store: BudgetStore,
        counters: Counters,
        *,
        clock: Clock | None = None,
        config_ttl_s: float = 1.0,
        key_exists: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.store = store
        self.counters = counters
        self._clock = clock or SystemClock()
        self._ttl = config_ttl_s
        self._key_exists = key_exists
        self._cache: dict[str, tuple[float, list[Budget]]] = {}

    # --- CRUD (the /api/budgets adapter and the CLI) ---
    async def create_budget(self, project_id: str, spec: BudgetSpec) -> Budget:
        subject = (spec.subject or "").strip()
        if spec.scope == "project" and subject:
            raise InvalidInputError("a project budget takes no subject", param="subject")
        if spec.scope != "project" and not subject:
            raise InvalidInputError(f"a {spec.scope} budget needs a subject", param="subject")
        if spec.scope == "key" and self._key_exists is not None:
            if not await asyncio.to_thread(self._key_exists, project_id, subject):
                raise NotFoundError(f"no key {subject!r} in this project", param="subject")
        budget = Budget(
            new_id("bud"), project_id, spec.name, spec.scope, subject, spec.period, float(spec.limit_usd),
            spec.mode, spec.exempt_admin, self._clock.now_ns(),
        )  # fmt: skip
        await asyncio.to_thread(self.store.insert_budget, budget)
        self._cache.pop(project_id, None)
        return budget

    async def list_budgets(self, project_id: str) -> list[dict[str, Any]]:
        budgets = await asyncio.to_thread(self.store.list_budgets, project_id)
        return [await self._with_usage(b) for b in budgets]

    async def get_budget(self, project_id: str, budget_id: str) -> dict[str, Any]:
        budget = await asyncio.to_thread(self.store.find_budget, project_id, budget_id)
        if budget is None:
            raise NotFoundError(f"no budget {budget_id!r}", param="budget_id")
        return await self._with_usage(budget)

    async def delete_budget(self, project_id: str, budget_id: str) -> None:
        if not await asyncio.to_thread(self.store.delete_budget, project_id, budget_id):
            raise NotFoundError(f"no budget {budget_id!r}", param="budget_id")
        self._cache.pop(project_id, None)

    async def _with_usage(self, budget: Budget) -> dict[str, Any]:
        start, end = period_bounds(budget.period, self._clock.now_ns())
        spent, reserved = await self.counters.usage(budget.budget_id, start)
        return {
            **budget.to_json(),
            "period_start": start,
            "period_end": end,
            "spent_usd": to_usd(spent),
            "reserved_usd": to_usd(reserved),
            "remaining_usd": round(max(0.0, budget.limit_usd - to_usd(spent + reserved)), 9),
        }

    # --- the request path ---
    async def budgets_of(self, project_id: str) -> list[Budget]:
        now = time.monotonic()
        hit = self._cache.get(project_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        budgets = await asyncio.to_thread(self.store.list_budgets, project_id)
        self._cache[project_id] = (now + self._ttl, budgets)
        return budgets

    def lines(self, budgets: Sequence[Budget]) -> list[Line]:
        now_ns = self._clock.now_ns()
        out = []
        for b in budgets:
            start, end = period_bounds(b.period, now_ns)
            limit = to_units(b.limit_usd) if b.mode == "hard" else None
            out.append(Line(b.budget_id, start, limit, None if end is None else end + 86_400))
        return out


def applicable(
    budgets: Sequence[Budget], *, key_id: str, is_admin: bool, user_id: str | None, tags: Sequence[str]
) -> list[Budget]:
    """The budgets one call is held to."""
    out = []
    for b in budgets:
        if is_admin and b.exempt_admin:
            continue
        if (
            b.scope == "project"
            or (b.scope == "key" and b.subject == key_id)
            or (b.scope == "user" and user_id is not None and b.subject == user_id)
            or (b.scope == "tag" and b.subject in tags)
        ):
            out.append(b)
    return out


@dataclass
class Reservation:
    """A call's hold on its budgets: settled or released exactly once."""

    counters: Counters
    budgets: list[Budget]
    lines: list[Line]
    amount: int
    price_known: bool
    warnings: list[str] = field(default_factory=list)
    done: bool = False
    reservation_id: str = field(default_factory=lambda: new_id("res"))

    def close(self, cost_usd: float | None, *, consumed: bool) -> int | None:
        """Mark settled; the amount to charge (0: a release), or None when it was settled already."""
        if self.done:
            return None
        self.done = True
        if not consumed:
            return 0
        return self.amount if cost_usd is None else to_units(cost_usd)  # unknown cost: the reservation

    async def settle(self, cost_usd: float | None) -> None:
        actual = self.close(cost_usd, consumed=True)
        if actual is not None:
            await self.counters.settle(self.lines, self.amount, actual, reservation_id=self.reservation_id)

    async def release(self) -> None:
        if self.done:
            return
        self.done = True
        await self.counters.settle(self.lines, self.amount, 0, reservation_id=self.reservation_id)


async def reserve(
    service: BudgetService, budgets: list[Budget], amount: int, *, price_known: bool
) -> Reservation | None:
    """Reserve ``amount`` against ``budgets`` or raise :class:`BudgetExceededError` (OpenAI envelope, no retry)."""
    if not budgets or amount <= 0:
        return None
    lines = service.lines(budgets)
    reservation_id = new_id("res")
    failed, totals = await service.counters.reserve(lines, amount, reservation_id=reservation_id)
    if failed:
        raise over_budget(budgets[failed - 1], amount)
    warnings = [
        b.name
        for b, line, total in zip(budgets, lines, totals, strict=True)
        if b.mode == "soft" and total > to_units(b.limit_usd)
    ]
    return Reservation(service.counters, budgets, lines, amount, price_known, warnings, reservation_id=reservation_id)


def over_budget(b: Budget, amount: int) -> BudgetExceededError:
    return BudgetExceededError(
        f"budget {b.name!r} ({b.scope}{' ' + repr(b.subject) if b.subject else ''}, {b.period}) of "
        f"${b.limit_usd:g} would be exceeded by this request (worst case ${to_usd(amount):g})"
    )


def estimate_input_tokens(raw: dict[str, Any]) -> int:
    """An upper bound of the input tokens: UTF-8 bytes of the messages (and tools) as JSON (a token is >= 1 byte)."""
    size = len(orjson.dumps(raw.get("messages") or raw.get("input") or ""))
    if raw.get("tools"):
        size += len(orjson.dumps(raw["tools"]))
    return size + 1


def output_cap(raw: dict[str, Any], context_window: int | None, default_context: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = raw.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return context_window or default_context
