"""Rate limits: requests/min and tokens/min per API key, per end user and per deployment.

A sliding-window counter (two one-minute windows; the previous one weighted by the part of it still inside the
last 60 s), as Cloudflare and Redis' own examples do: O(1) state per subject, no request log. A call is admitted
when, for every limit that applies, ``weighted + cost <= limit``; then every counter is incremented, all or
nothing (in-process: no ``await`` between check and update; Redis: one Lua script, ``_limits_redis``).

- requests cost 1; tokens cost the input-token estimate + ``max_tokens`` (if given) up front, and are corrected
  to the real usage after the call (the difference is added to the current window);
- key limits: set per key (``PUT /api/rate-limits`` with ``scope: key``); end-user limits: per user id, or ``*``
  for every user of the project (the end user is ``x-llmops-user`` or the body's ``user``); deployment limits:
  ``rpm`` / ``tpm`` on a deployment in llmops.yaml; a deployment at its limit is skipped like a failing one
  (the router falls back to the next);
- answers carry ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests``
  (and ``-tokens``) of the tightest key/user limit, like OpenAI's; a refusal is 429 ``rate_limit_exceeded`` with
  ``retry-after``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError, NotFoundError, RateLimitedError, UpstreamError
from llmops.core.ids import new_id
from llmops.gateway.budgets import (
    BudgetService,
    Line,
    MemoryCounters,
    Reservation,
    applicable,
    estimate_input_tokens,
    output_cap,
    over_budget,
    to_units,
    to_usd,
)

log = logging.getLogger("llmops.gateway.limits")
WINDOW_S = 60
LimitScope = Literal["key", "user"]


@dataclass(frozen=True)
class RateLimit:
    limit_id: str
    project_id: str
    scope: LimitScope
    subject: str  # key id, user id, or "*" (every end user)
    rpm: int | None
    tpm: int | None
    created_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "limit_id": self.limit_id,
            "scope": self.scope,
            "subject": self.subject,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "created_at": self.created_ns // 1_000_000_000,
        }


class RateLimitStore(Protocol):
    def upsert_rate_limit(self, limit: RateLimit) -> RateLimit: ...

    def list_rate_limits(self, project_id: str) -> list[RateLimit]: ...

    def delete_rate_limit(self, project_id: str, limit_id: str) -> bool: ...


@dataclass(frozen=True)
class Check:
    """One counter to charge: ``name`` identifies subject and kind (requests or tokens)."""

    name: str
    limit: int
    cost: int


@dataclass(frozen=True)
class Verdict:
    """``ok``; per check the remaining allowance after this call; when refused, the first refused check and how
    long until it would pass."""

    ok: bool
    remaining: list[int]
    refused: int = -1
    retry_after_s: float = 0.0
    reset_s: float = 0.0


class Windows(Protocol):
    async def hit(self, checks: Sequence[Check], now_s: float) -> Verdict: ...

    async def adjust(self, name: str, delta: int, now_s: float) -> None: ...

    async def aclose(self) -> None: ...


def weighted(prev: int, cur: int, now_s: float) -> float:
    elapsed = now_s % WINDOW_S
    return prev * (1 - elapsed / WINDOW_S) + cur


def wait_s(prev: int, cur: int, cost: int, limit: int, now_s: float) -> float:
    """Seconds until ``weighted + cost <= limit`` (the previous window's share decays linearly)."""
    elapsed = now_s % WINDOW_S
    need = weighted(prev, cur, now_s) + cost - limit
    if need <= 0:
        return 0.0
    if prev > 0 and need <= prev * (1 - elapsed / WINDOW_S):
        return need * WINDOW_S / prev
    rest = WINDOW_S - elapsed  # at the boundary the current window becomes the previous one
    return min(float(WINDOW_S * 2), rest + max(0.0, (cur + cost - limit) * WINDOW_S / max(cur, 1)))


def verdict(checks: Sequence[Check], values: Sequence[tuple[int, int]], now_s: float) -> Verdict:
    """Admission from each check's (previous, current) window counts (shared by both backends)."""
    for i, (check, (prev, cur)) in enumerate(zip(checks, values, strict=True)):
        if weighted(prev, cur, now_s) + check.cost > check.limit:
            return Verdict(False, [], i, wait_s(prev, cur, check.cost, check.limit, now_s))
    remaining = [
        max(0, math.floor(c.limit - weighted(p, cur, now_s) - c.cost))
        for c, (p, cur) in zip(checks, values, strict=True)
    ]
    return Verdict(True, remaining, reset_s=WINDOW_S - now_s % WINDOW_S)


class MemoryWindows:
    """In-process windows (one event loop: check and increment with no ``await`` between them)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._swept = 0

    def _values(self, checks: Sequence[Check], w: int) -> list[tuple[int, int]]:
        return [(self._counts.get((c.name, w - 1), 0), self._counts.get((c.name, w), 0)) for c in checks]

    async def hit(self, checks: Sequence[Check], now_s: float) -> Verdict:
        result = self.peek(checks, now_s)
        if result.ok:
            self.charge(checks, now_s)
        return result

    def peek(self, checks: Sequence[Check], now_s: float) -> Verdict:
        w = int(now_s // WINDOW_S)
        if w != self._swept:  # drop windows older than the previous one
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= w - 1}
            self._swept = w
        return verdict(checks, self._values(checks, w), now_s)

    def charge(self, checks: Sequence[Check], now_s: float) -> None:
        w = int(now_s // WINDOW_S)
        for c in checks:
            self._counts[(c.name, w)] = self._counts.get((c.name, w), 0) + c.cost

    async def adjust(self, name: str, delta: int, now_s: float) -> None:
        k = (name, int(now_s // WINDOW_S))
        self._counts[k] = self._counts.get(k, 0) + delta

    async def aclose(self) -> None:
        return None


class Joint(Protocol):
    """Rate-limit windows and the budget reservation of one call decided together, atomically: either every
    window is charged and every budget reserved, or nothing changes (a refused call costs no allowance)."""

    async def admit(
        self, checks: Sequence[Check], now_s: float, lines: Sequence[Line], amount: int, *, reservation_id: str = ""
    ) -> tuple[Verdict, int, list[int]]:
        """(windows verdict, 1-based index of the refusing budget or 0, budget totals after)."""
        ...

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
        """Settle a reservation (``actual`` 0: release) and add each (window, token delta) correction. May only
        queue it (Redis: sent with the next admission or in the next loop turn); ``flush`` sends what is queued."""
        ...

    async def flush(self) -> None: ...


class MemoryJoint:
    """In-process: the database read happens first; then check, reserve and charge run with no ``await``."""

    def __init__(self, windows: MemoryWindows, counters: MemoryCounters) -> None:
        self._windows = windows
        self._counters = counters

    async def admit(
        self, checks: Sequence[Check], now_s: float, lines: Sequence[Line], amount: int, *, reservation_id: str = ""
    ) -> tuple[Verdict, int, list[int]]:
        if lines:
            await self._counters.preload(lines)
        result = self._windows.peek(checks, now_s)
        if not result.ok:
            return result, 0, []
        failed, totals = self._counters.take(lines, amount) if lines else (0, [])
        if not failed:
            self._windows.charge(checks, now_s)
        return result, failed, totals

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
        if lines:
            await self._counters.settle(lines, reserved, actual)
        for name, delta in corrections:
            await self._windows.adjust(name, delta, now_s)

    async def flush(self) -> None:
        return None


class RateLimitService:
    """Rate-limit CRUD and lookups; definitions cached per project for ``config_ttl_s``."""

    def __init__(
        self,
        store: RateLimitStore,
        windows: Windows,
        *,
        clock: Clock | None = None,
        config_ttl_s: float = 1.0,
        key_exists: Any = None,
    ) -> None:
        self.store = store
        self.windows = windows
        self._clock = clock or SystemClock()
        self._ttl = config_ttl_s
        self._key_exists = key_exists
        self._cache: dict[str, tuple[float, dict[tuple[str, str], RateLimit]]] = {}

    def now_s(self) -> float:
        return self._clock.now_ns() / 1e9

    async def set_limit(
        self, project_id: str, scope: LimitScope, subject: str, *, rpm: int | None, tpm: int | None
    ) -> RateLimit:
        subject = subject.strip()
        if not subject:
            raise InvalidInputError("subject is required (a key id, a user id or '*')", param="subject")
        if rpm is None and tpm is None:
            raise InvalidInputError("set rpm, tpm or both", param="rpm")
        if scope == "key" and self._key_exists is not None:
            if not await asyncio.to_thread(self._key_exists, project_id, subject):
                raise NotFoundError(f"no key {subject!r} in this project", param="subject")
        limit = RateLimit(new_id("rl"), project_id, scope, subject, rpm, tpm, self._clock.now_ns())
        saved = await asyncio.to_thread(self.store.upsert_rate_limit, limit)
        self._cache.pop(project_id, None)
        return saved

    async def list_limits(self, project_id: str) -> list[RateLimit]:
        return await asyncio.to_thread(self.store.list_rate_limits, project_id)

    async def delete_limit(self, project_id: str, limit_id: str) -> None:
        if not await asyncio.to_thread(self.store.delete_rate_limit, project_id, limit_id):
            raise NotFoundError(f"no rate limit {limit_id!r}", param="limit_id")
        self._cache.pop(project_id, None)

    # --- projects.KeyLimits: per-key limits set at key creation and shown with the keys ---
    async def set_key_limit(self, project_id: str, key_id: str, *, rpm: int | None, tpm: int | None) -> None:
        await self.set_limit(project_id, "key", key_id, rpm=rpm, tpm=tpm)

    async def key_limits(self, project_id: str) -> dict[str, tuple[int | None, int | None]]:
        return {r.subject: (r.rpm, r.tpm) for r in await self.list_limits(project_id) if r.scope == "key"}

    async def limits_of(self, project_id: str) -> dict[tuple[str, str], RateLimit]:
        now = time.monotonic()
        hit = self._cache.get(project_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await asyncio.to_thread(self.store.list_rate_limits, project_id)
        by_subject: dict[tuple[str, str], RateLimit] = {(r.scope, r.subject): r for r in rows}
        self._cache[project_id] = (now + self._ttl, by_subject)
        return by_subject


def checks_for(name: str, rl: Any, tokens: int) -> list[tuple[str, Check]]:
    """(kind, check) pairs of one subject with ``rpm`` / ``tpm`` attributes."""
    out = []
    if rl.rpm:
        out.append(("requests", Check(f"{name}:r", int(rl.rpm), 1)))
    if rl.tpm:
        out.append(("tokens", Check(f"{name}:t", int(rl.tpm), tokens)))
    return out


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``17ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def refusal(kind: str, subject: str, check: Check, result: Verdict) -> RateLimitedError:
    retry = max(1.0, math.ceil(result.retry_after_s))
    err = RateLimitedError(
        f"rate limit of {check.limit} {kind}/min for {subject} reached; retry in {retry:g}s",
        retry_after=retry,
        code="rate_limit_exceeded",
    )
    err.headers = {  # type: ignore[attr-defined]
        f"x-ratelimit-limit-{kind}": str(check.limit),
        f"x-ratelimit-remaining-{kind}": "0",
        f"x-ratelimit-reset-{kind}": duration(result.retry_after_s),
    }
    return err


# --- the gateway's collaborator: admission (rate limits, then the budget reservation) and settlement -----------
@dataclass(frozen=True)
class DeploymentCost:
    name: str
    kind: str
    upstream_model: str
    context_window: int | None
    rpm: int | None
    tpm: int | None


def deployment_costs(config: Any) -> dict[str, list[DeploymentCost]]:
    """Alias → its deployments' pricing and limit facts, named as ``providers.build_routes`` names them."""
    out: dict[str, list[DeploymentCost]] = {}
    for model in config.models:
        out[model.name] = [
            DeploymentCost(
                d.name or f"{model.name}#{i + 1}:{d.provider}",
                d.provider,
                d.model or model.name,
                d.context_window,
                d.rpm,
                d.tpm,
            )  # fmt: skip
            for i, d in enumerate(model.deployments)
        ]
    return out


class Admission:
    """One admitted call: its budget reservation, the token counters it charged up front, the headers to send.
    ``finish`` settles exactly once (from ``GatewayService._record``, which every outcome goes through)."""

    def __init__(self, limits: GatewayLimits, reservation: Reservation | None, est_tokens: int) -> None:
        self._limits = limits
        self.reservation = reservation
        self.est_tokens = est_tokens
        self.token_counters: list[tuple[str, int]] = []  # (counter name, tokens charged up front)
        self.headers: dict[str, str] = {}
        self.done = False

    def finish(self, *, cost_usd: float | None, tokens: int | None, consumed: bool) -> None:
        """Settle to ``cost_usd`` when the upstream produced tokens (``consumed``), else release."""
        if self.done:
            return
        self.done = True
        if self.reservation is None and not self.token_counters:  # no budget, no token limit: nothing to settle
            return
        self._limits.spawn(self._finish(cost_usd, tokens, consumed))

    async def _finish(self, cost_usd: float | None, tokens: int | None, consumed: bool) -> None:
        """Settle the reservation and correct the token windows to the real usage, together (one Redis trip)."""
        lines: list[Line] = []
        reserved = actual = 0
        rid = ""
        if self.reservation is not None:
            charge = self.reservation.close(cost_usd, consumed=consumed)
            if charge is not None:
                lines, reserved, actual = self.reservation.lines, self.reservation.amount, charge
                rid = self.reservation.reservation_id
        real = tokens if consumed and tokens is not None else (0 if not consumed else None)
        corrections = [] if real is None else [(n, real - c) for n, c in self.token_counters if real != c]
        if lines or corrections:
            now_s = self._limits.rates.now_s()
            await self._limits.joint.settle(lines, reserved, actual, corrections, now_s, reservation_id=rid)


class GatewayLimits:
    """Admission for every gateway call: rate limits (key, end user), then the budget reservation; the
    deployment's own rpm/tpm are checked when the router tries it (``check_deployment``)."""

    def __init__(
        self,
        budgets: BudgetService,
        rates: RateLimitService,
        prices: Any,  # gateway.pricing.PriceTable
        routes: dict[str, list[DeploymentCost]],
        *,
        default_context_tokens: int = 128_000,
        unknown_price_reserve_usd: float = 1.0,
        joint: Joint | None = None,
    ) -> None:
        self.budgets = budgets
        self.rates = rates
        self._prices = prices
        self._routes = routes
        self._default_context = default_context_tokens
        self._unknown_reserve = unknown_price_reserve_usd
        self._deployments = {d.name: d for deps in routes.values() for d in deps}
        self._tasks: set[asyncio.Task[None]] = set()
        if joint is None:  # in-process counters; Redis passes its one-script admission (_limits_redis.RedisJoint)
            assert isinstance(rates.windows, MemoryWindows) and isinstance(budgets.counters, MemoryCounters)
            joint = MemoryJoint(rates.windows, budgets.counters)
        self.joint = joint

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # task boundary: log, the next call goes on
            log.warning("settling a reservation failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for pending settlements (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.joint.flush()

    async def aclose(self) -> None:
        await self.drain()
        await self.budgets.counters.aclose()
        await self.rates.windows.aclose()

    def worst_case(self, alias: str, raw: dict[str, Any], input_tokens: int, *, embeddings: bool) -> tuple[int, bool]:
        """(nano-dollars, price known) of the most expensive deployment of ``alias`` for this request."""
        worst, known = 0, True
        for d in self._routes.get(alias, []):
            out = 0 if embeddings else output_cap(raw, d.context_window, self._default_context)
            cost = self._prices.cost(
                provider_kind=d.kind, model=d.upstream_model, input_tokens=input_tokens, output_tokens=out
            )
            if cost is None:
                known, cost = False, self._unknown_reserve
            worst = max(worst, to_units(cost))
        return worst, known

    async def admit(self, ctx: Any, alias: str, raw: dict[str, Any], *, embeddings: bool = False) -> Admission:
        """Key / end-user rate limits and the worst-case reservation, decided together (``Joint``): a refused
        call charges nothing. Rate limits are reported first (the call may simply wait), then budgets."""
        who = ctx.principal
        tokens_in = estimate_input_tokens(raw)
        max_out = 0 if embeddings else int(raw.get("max_completion_tokens") or raw.get("max_tokens") or 0)
        admission = Admission(self, None, tokens_in + max_out)
        pairs = await self._rate_checks(ctx, admission.est_tokens)
        budgets = applicable(
            await self.budgets.budgets_of(who.project_id),
            key_id=who.key_id, is_admin=who.is_admin, user_id=ctx.user_id, tags=ctx.tags,
        )  # fmt: skip
        amount, known = self.worst_case(alias, raw, tokens_in, embeddings=embeddings) if budgets else (0, True)
        if amount <= 0:
            budgets = []
        if not pairs and not budgets:
            return admission
        lines = self.budgets.lines(budgets)
        checks = [c for _, _, c in pairs]
        rid = new_id("res")
        result, failed, totals = await self.joint.admit(checks, self.rates.now_s(), lines, amount, reservation_id=rid)
        if not result.ok:
            label, kind, check = pairs[result.refused]
            raise refusal(kind, label, check, result)
        if failed:
            raise over_budget(budgets[failed - 1], amount)
        self._rate_headers(admission, pairs, result)
        if budgets:
            admission.reservation = Reservation(
                self.budgets.counters, budgets, lines, amount, known, reservation_id=rid
            )
            ctx.attributes["llmops.budget.reserved_usd"] = to_usd(amount)
            warnings = [
                b.name
                for b, total in zip(budgets, totals, strict=True)
                if b.mode == "soft" and total > to_units(b.limit_usd)
            ]
            if warnings:
                admission.headers["x-llmops-budget-warning"] = f"soft budget exceeded: {','.join(warnings)}"
                ctx.attributes["llmops.budget.warning"] = warnings
        return admission

    async def _rate_checks(self, ctx: Any, tokens: int) -> list[tuple[str, str, Check]]:
        """(subject label, "requests" | "tokens", check) of the key's and the end user's limits."""
        limits = await self.rates.limits_of(ctx.principal.project_id)
        if not limits:
            return []
        project, key_id = ctx.principal.project_id, ctx.principal.key_id
        subjects = []
        key_limit = limits.get(("key", key_id))
        if key_limit is not None:
            subjects.append((f"key {key_id!r}", f"rl:{project}:k:{key_id}", key_limit))
        if ctx.user_id is not None:
            user_limit = limits.get(("user", ctx.user_id)) or limits.get(("user", "*"))
            if user_limit is not None:
                subjects.append((f"user {ctx.user_id!r}", f"rl:{project}:u:{ctx.user_id}", user_limit))
        return [(label, kind, c) for label, name, rl in subjects for kind, c in checks_for(name, rl, tokens)]

    @staticmethod
    def _rate_headers(admission: Admission, pairs: list[tuple[str, str, Check]], result: Verdict) -> None:
        tightest: dict[str, tuple[int, Check]] = {}
        for (_, kind, check), remaining in zip(pairs, result.remaining, strict=True):
            if kind not in tightest or remaining < tightest[kind][0]:
                tightest[kind] = (remaining, check)
            if kind == "tokens":
                admission.token_counters.append((check.name, check.cost))
        for kind, (remaining, check) in tightest.items():
            admission.headers[f"x-ratelimit-limit-{kind}"] = str(check.limit)
            admission.headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
            admission.headers[f"x-ratelimit-reset-{kind}"] = duration(result.reset_s)

    async def check_deployment(self, name: str, admission: Admission | None) -> None:
        """Charge the deployment's rpm/tpm; at its limit it answers like an upstream 429 (the router falls back)."""
        d = self._deployments.get(name)
        if d is None or (d.rpm is None and d.tpm is None):
            return
        tokens = admission.est_tokens if admission is not None else 1
        checks = [c for _, c in checks_for(f"rl:dep:{name}", d, tokens)]
        result = await self.rates.windows.hit(checks, self.rates.now_s())
        if not result.ok:
            raise UpstreamError(
                f"deployment {name!r} is at its rate limit ({checks[result.refused].limit}/min)",
                upstream_status=429,
                retry_after=WINDOW_S * 2,  # beyond max_retry_after_s: fall back now rather than wait
                code="deployment_rate_limited",
            )
        if admission is not None and d.tpm:
            admission.token_counters.append((checks[-1].name, tokens))
