"""Cost reports over recorded spans: spend over time and by group, savings from caches, and "what if".

- Spend: the spans' ``cost_usd`` (recorded by the gateway from its price table; ingested spans carry their
  own). A span without a price counts in ``unpriced_requests``: unknown is never shown as $0.
- Savings: the cache writes ``llmops.cache.status`` (hit | miss | bypass), ``llmops.cache.kind`` and
  ``llmops.cache.saved_usd`` (the cost of the original call) on each span; hit rate per route is
  hits / (hits + misses) of the alias (bypassed requests are not cache traffic).
- What-if: the same traffic (input and output tokens of every chat span that went upstream, i.e. not a cache
  hit) priced with another model's unit price. Cached-input discounts are ignored (a stated approximation).
  Prices come from the caller (``price_of``): tracing never imports the gateway and its price table.

Every query is scoped to one project (the caller's). Storage: ``_sql_costs.SqlCostStore``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from llmops.core.errors import InvalidInputError
from llmops.core.timeparse import iso

CostGroup = Literal["project", "key", "user", "model", "prompt", "tag"]
Interval = Literal["hour", "day"]
INTERVAL_NS = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9}
DEFAULT_RANGE_NS = {"hour": 86_400 * 10**9, "day": 30 * 86_400 * 10**9}
MAX_BUCKETS = 2000
MAX_GROUPS = 200


@dataclass(frozen=True)
class CostRow:
    """One aggregate row of the store: spans sharing bucket, group, model, operation and cache status/kind."""

    bucket: int  # start_ns // interval
    groups: tuple[str | None, ...]
    model: str | None
    operation: str | None
    cache_status: str | None
    cache_kind: str | None
    requests: int
    cost_usd: float
    unpriced: int
    input_tokens: int
    output_tokens: int
    saved_usd: float


@dataclass(frozen=True)
class CostQuery:
    start_ns: int
    end_ns: int
    interval: Interval = "day"
    group_by: CostGroup | None = None


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


PriceLookup = Callable[[str], ModelPrice | None]


class CostStore(Protocol):
    def cost_rows(
        self, project_id: str, start_ns: int, end_ns: int, bucket_ns: int, group_by: CostGroup | None
    ) -> list[CostRow]: ...


def cost_query(
    start_ns: int | None, end_ns: int | None, *, now_ns: int, interval: str = "day", group_by: str | None = None
) -> CostQuery:
    """A validated query; the default range is the last 24 h (hourly) or 30 days (daily)."""
    if interval not in INTERVAL_NS:
        raise InvalidInputError(f"interval must be hour or day, got {interval!r}", param="interval")
    if group_by is not None and group_by not in ("project", "key", "user", "model", "prompt", "tag"):
        raise InvalidInputError(
            f"group_by must be one of project, key, user, model, prompt, tag; got {group_by!r}", param="group_by"
        )
    end = end_ns if end_ns is not None else now_ns
    start = start_ns if start_ns is not None else end - DEFAULT_RANGE_NS[interval]
    if end <= start:
        raise InvalidInputError("end must be after start", param="end")
    step = INTERVAL_NS[interval]
    if end // step - start // step + 1 > MAX_BUCKETS:
        raise InvalidInputError(f"too many {interval} buckets for this range (max {MAX_BUCKETS})", param="start")
    return CostQuery(start, end, interval, group_by)  # type: ignore[arg-type]


def _blank() -> dict[str, Any]:
    return {
        "requests": 0,
        "cost_usd": 0.0,
        "unpriced_requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_hits": 0,
        "cache_misses": 0,
        "saved_usd": 0.0,
    }


def _blank_what_if() -> dict[str, Any]:
    return {"requests": 0, "input_tokens": 0, "output_tokens": 0, "actual_usd": 0.0, "unpriced_requests": 0}


def _add(acc: dict[str, Any], r: CostRow) -> None:
    acc["requests"] += r.requests
    acc["cost_usd"] += r.cost_usd
    acc["unpriced_requests"] += r.unpriced
    acc["input_tokens"] += r.input_tokens
    acc["output_tokens"] += r.output_tokens
    if r.cache_status == "hit":
        acc["cache_hits"] += r.requests
        acc["saved_usd"] += r.saved_usd
    elif r.cache_status == "miss":
        acc["cache_misses"] += r.requests


def _finish(acc: dict[str, Any]) -> dict[str, Any]:
    looked = acc["cache_hits"] + acc["cache_misses"]
    acc["cost_usd"] = round(acc["cost_usd"], 10)
    acc["saved_usd"] = round(acc["saved_usd"], 10)
    acc["cache_hit_rate"] = acc["cache_hits"] / looked if looked else None
    return acc


class CostService:
    def __init__(self, store: CostStore, *, price_of: PriceLookup | None = None) -> None:
        self._store = store
        self._price_of = price_of

    async def _rows(self, project_id: str, q: CostQuery) -> list[CostRow]:
        step = INTERVAL_NS[q.interval]
        return await asyncio.to_thread(self._store.cost_rows, project_id, q.start_ns, q.end_ns, step, q.group_by)

    async def report(self, project_id: str, q: CostQuery) -> dict[str, Any]:
        """Totals, a zero-filled series per interval, groups (by cost), cache figures per route."""
        rows = await self._rows(project_id, q)
        step = INTERVAL_NS[q.interval]
        totals = _blank()
        buckets: dict[int, dict[str, Any]] = defaultdict(_blank)
        groups: dict[str | None, dict[str, Any]] = defaultdict(_blank)
        routes: dict[str | None, dict[str, Any]] = defaultdict(_blank)
        kinds: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in rows:
            _add(totals, r)
            _add(buckets[r.bucket], r)
            _add(routes[r.model], r)
            if r.cache_status == "hit" and r.cache_kind:
                kinds[r.model][r.cache_kind] += r.requests
            for g in r.groups:
                _add(groups[g], r)
        series = [
            {"start": iso(b * step), "start_ns": b * step, **_finish(buckets.get(b, _blank()))}
            for b in range(q.start_ns // step, (q.end_ns - 1) // step + 1)
        ]
        ranked = sorted(groups.items(), key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["requests"], str(kv[0])))
        cache = [
            {"model": m, **_finish(v), "hits_by_kind": dict(kinds.get(m, {}))}
            for m, v in sorted(routes.items(), key=lambda kv: str(kv[0]))
            if v["cache_hits"] or v["cache_misses"]
        ]
        return {
            "start": iso(q.start_ns),
            "end": iso(q.end_ns),
            "interval": q.interval,
            "group_by": q.group_by,
            "totals": _finish(totals),
            "series": series,
            "groups": [{"group": g, **_finish(v)} for g, v in ranked[:MAX_GROUPS]] if q.group_by else [],
            "groups_truncated": bool(q.group_by) and len(ranked) > MAX_GROUPS,
            "cache_by_route": cache,
        }

    async def what_if(self, project_id: str, model: str, q: CostQuery) -> dict[str, Any]:
        """The chat traffic of the range priced with ``model``'s unit price, next to what it cost."""
        price = self._price_of(model) if self._price_of is not None and model else None
        if price is None:
            raise InvalidInputError(f"no price known for model {model!r}", param="model", code="model_not_priced")
        rows = await self._rows(project_id, q)
        by_group: dict[str | None, dict[str, Any]] = defaultdict(_blank_what_if)
        for r in rows:
            if r.operation != "chat" or r.cache_status == "hit":
                continue  # embeddings are not chat traffic; a cache hit would be a hit on the other model too
            for g in (*r.groups, "__total__"):
                acc = by_group[g]
                acc["requests"] += r.requests
                acc["input_tokens"] += r.input_tokens
                acc["output_tokens"] += r.output_tokens
                acc["actual_usd"] += r.cost_usd
                acc["unpriced_requests"] += r.unpriced
        total = by_group.pop("__total__", None) or _blank_what_if()

        def shaped(acc: dict[str, Any]) -> dict[str, Any]:
            what_if = price.cost(acc["input_tokens"], acc["output_tokens"])
            actual = round(acc["actual_usd"], 10)
            return {
                **acc,
                "actual_usd": actual,
                "what_if_usd": round(what_if, 10),
                "difference_usd": round(what_if - actual, 10),
                "ratio": what_if / actual if actual else None,
            }

        groups = sorted(by_group.items(), key=lambda kv: (-kv[1]["actual_usd"], str(kv[0])))
        return {
            "model": model,
            "price": {"input_per_mtok": price.input_per_mtok, "output_per_mtok": price.output_per_mtok},
            "start": iso(q.start_ns),
            "end": iso(q.end_ns),
            "group_by": q.group_by,
            "totals": shaped(total),
            "groups": [{"group": g, **shaped(v)} for g, v in groups[:MAX_GROUPS]] if q.group_by else [],
        }
