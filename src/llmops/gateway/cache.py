"""Response caches for chat completions: exact (this module) and semantic (``gateway.semantic_cache``).

A cache key cannot be built without a project: :func:`cache_key` hashes the project id, the route (alias) and the
canonical request (messages, tools, tool_choice, every sampling parameter, response_format, seed, …) plus the prompt
version when the request was rendered from a registered prompt. Stores keep ``project_id`` as a column (SQL) or a
key prefix (Redis), and every lookup filters by it, so two projects never share an entry.

What is cached: successful replies only, never errors; never sampled requests (temperature > 0, or unset, since
providers default to 1) unless the route sets ``allow_sampled``. Per-route defaults come from ``llmops.yaml``
(``cache:`` on a model alias, off unless configured); a request overrides with ``x-llmops-cache``:

- ``use``: look up and store (even where the route's default is off);
- ``no-store``: look up, never store this reply;
- ``no-cache``: neither look up nor store (bypass);
- ``refresh``: skip the lookup, call upstream, overwrite the entry;

and ``x-llmops-cache-ttl: <seconds>`` for the entry it stores. A hit costs nothing (cost 0 on the span) and is traced
with ``llmops.cache.status``/``kind``/``saved_usd`` (the original call's cost). Imports no framework.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError
from llmops.gateway.config import CacheConfig

Directive = Literal["use", "no-store", "no-cache", "refresh"]
Status = Literal["hit", "miss", "bypass"]
DIRECTIVES: tuple[Directive, ...] = ("use", "no-store", "no-cache", "refresh")
MAX_TTL_S = 30 * 86400
# Fields that do not change what the model answers: a streamed and a plain request share an entry.
_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "store", "llmops_prompt", "llmops"})
_SEMANTIC_KIND = "semantic"
log = logging.getLogger("llmops.gateway.cache")


class ExactCacheStore(Protocol):
    """Entries addressed by ``(project_id, key)``; expired entries are never returned."""

    async def find(self, project_id: str, key: str, now_ns: int) -> tuple[dict[str, Any], float | None] | None: ...

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
    ) -> None: ...

    async def purge(self, project_id: str) -> int: ...

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        """Live entries per alias."""
        ...


class SemanticLookup(Protocol):
    """What the exact cache needs from ``gateway.semantic_cache.SemanticCache``."""

    async def find(
        self, project_id: str, alias: str, body: dict[str, Any], config: CacheConfig, now_ns: int
    ) -> tuple[dict[str, Any], float | None, float] | None: ...

    async def put(
        self,
        project_id: str,
        alias: str,
        body: dict[str, Any],
        reply: dict[str, Any],
        cost_usd: float | None,
        *,
        ttl_s: int,
        now_ns: int,
    ) -> None: ...

    async def purge(self, project_id: str) -> int: ...

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]: ...

    async def measured_wrong_hit_rate(self, threshold: float | None, *, guard: bool) -> float | None: ...

    def threshold_for(self, config: CacheConfig) -> float: ...

    def use_contradiction(self, contradiction: Callable[[Sequence[tuple[str, str]]], list[float]]) -> None: ...


class EntryStore(ExactCacheStore, Protocol):
    """An exact store that can also say when an entry expires (the SQL store)."""

    async def find_entry(
        self, project_id: str, key: str, now_ns: int
    ) -> tuple[dict[str, Any], float | None, int] | None: ...


class MemoryFront:
    """Recently used exact-cache entries kept in process, in front of the database store.

    A hit then costs a dictionary lookup instead of a database round trip on a worker thread (the issue's
    ≤ 1 ms target for a hit served end to end). Used only when this process is the store's one writer (SQLite):
    every put, refresh and purge goes through it, so it is never stale. With several replicas sharing a database
    (PostgreSQL) or Redis, another process may purge or refresh an entry, so no front is used there.
    Bounded by ``max_bytes`` of serialized replies (least recently used dropped first); entries keep the
    store's expiry and are never served past it. Replies are shared, never mutated (callers only serialize them)."""

    def __init__(self, store: EntryStore, *, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._store = store
        self._max = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str], tuple[dict[str, Any], float | None, int, int]] = OrderedDict()

    async def find(self, project_id: str, key: str, now_ns: int) -> tuple[dict[str, Any], float | None] | None:
        slot = (project_id, key)
        entry = self._entries.get(slot)
        if entry is not None:
            if entry[2] > now_ns:
                self._entries.move_to_end(slot)
                return entry[0], entry[1]
            self._drop(slot)
        found = await self._store.find_entry(project_id, key, now_ns)
        if found is None:
            return None
        body, cost, expires = found
        self._keep(slot, body, cost, expires)
        return body, cost

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
        self._drop((project_id, key))  # a failed write must not leave the old reply in front
        await self._store.put(
            project_id, key, alias=alias, body=body, cost_usd=cost_usd, now_ns=now_ns, expires_ns=expires_ns
        )
        self._keep((project_id, key), body, cost_usd, expires_ns)

    async def purge(self, project_id: str) -> int:
        for slot in [s for s in self._entries if s[0] == project_id]:
            self._drop(slot)
        return await self._store.purge(project_id)

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        return await self._store.count(project_id, now_ns)

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0
        close = getattr(self._store, "aclose", None)
        if close is not None:
            await close()

    def _keep(self, slot: tuple[str, str], body: dict[str, Any], cost: float | None, expires_ns: int) -> None:
        size = len(orjson.dumps(body))
        if size > self._max // 16:  # one huge reply must not evict everything else
            return
        self._drop(slot)
        self._entries[slot] = (body, cost, expires_ns, size)
        self._bytes += size
        while self._bytes > self._max:
            self._drop(next(iter(self._entries)))

    def _drop(self, slot: tuple[str, str]) -> None:
        entry = self._entries.pop(slot, None)
        if entry is not None:
            self._bytes -= entry[3]


def cache_key(project_id: str, alias: str, body: dict[str, Any], prompt: dict[str, Any] | None = None) -> str:
    """sha256 over the canonical JSON of project + route + request (+ prompt version). Needs a project."""
    if not project_id:
        raise ValueError("a cache key needs the caller's project id")
    request = {k: v for k, v in body.items() if k not in _NOT_IN_KEY}
    request["model"] = alias
    canonical = orjson.dumps(
        {"project_id": project_id, "alias": alias, "request": request, "prompt": prompt or {}},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


def is_sampled(body: dict[str, Any]) -> bool:
    """Unset temperature is sampled: OpenAI and most providers default to 1."""
    temperature = body.get("temperature")
    return temperature is None or float(temperature) > 0


def prompt_version(attributes: dict[str, Any]) -> dict[str, Any]:
    """The ``llmops.prompt.*`` span attributes a prompt render left on the call context."""
    return {k: v for k, v in attributes.items() if k.startswith("llmops.prompt.")}


def parse_directive(value: str | None) -> Directive | None:
    if value is None or not value.strip():
        return None
    directive = value.strip().lower()
    if directive not in DIRECTIVES:
        raise InvalidInputError(
            f"x-llmops-cache must be one of {', '.join(DIRECTIVES)}; got {value!r}",
            param="x-llmops-cache",
            code="invalid_value",
        )
    return directive  # type: ignore[return-value]  # checked against DIRECTIVES above


def parse_ttl(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_TTL_S:
        raise InvalidInputError(
            f"x-llmops-cache-ttl must be a whole number of seconds from 1 to {MAX_TTL_S}; got {value!r}",
            param="x-llmops-cache-ttl",
            code="invalid_value",
        )
    return int(text)


@dataclass
class CachePlan:
    """What the cache does for one request; ``status`` ends as hit, miss or bypass."""

    project_id: str
    alias: str
    key: str
    lookup: bool
    store: bool
    semantic: bool
    ttl_s: int
    config: CacheConfig
    status: Status = "bypass"
    kind: Literal["exact", "semantic"] = "exact"
    saved_usd: float = 0.0
    similarity: float | None = None
    error: str | None = None  # the store failed: the request went upstream (bypass), and the span says why

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"llmops.cache.status": self.status}
        if self.error:
            attrs["llmops.cache.error"] = self.error
        if self.status == "hit":
            attrs["llmops.cache.kind"] = self.kind
            attrs["llmops.cache.saved_usd"] = self.saved_usd
            if self.similarity is not None:
                attrs["llmops.cache.similarity"] = round(self.similarity, 4)
        return attrs


@dataclass
class RouteStats:
    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    bypass: int = 0
    saved_usd: float = 0.0


@dataclass
class _Counters:
    by_route: dict[tuple[str, str], RouteStats] = field(default_factory=dict)

    def get(self, project_id: str, alias: str) -> RouteStats:
        return self.by_route.setdefault((project_id, alias), RouteStats())


class ResponseCache:
    """The gateway's cache collaborator: plan, look up, store, count. Injected into ``GatewayService``."""

    def __init__(
        self,
        store: ExactCacheStore,
        routes: dict[str, CacheConfig],
        *,
        semantic: SemanticLookup | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._routes = routes
        self._semantic = semantic
        self._clock = clock or SystemClock()
        self._counters = _Counters()

    @property
    def semantic(self) -> SemanticLookup | None:
        return self._semantic

    @property
    def wants_nli(self) -> bool:
        return any(c.semantic.enabled and c.semantic.nli for c in self._routes.values())

    async def aclose(self) -> None:
        close = getattr(self._store, "aclose", None)
        if close is not None:
            await close()

    def plan(
        self,
        project_id: str,
        alias: str,
        body: dict[str, Any],
        *,
        header: str | None,
        ttl_header: str | None,
        attributes: dict[str, Any],
    ) -> CachePlan | None:
        """None when the route has no cache and the request asks for none (no header, no span attribute)."""
        directive, ttl = parse_directive(header), parse_ttl(ttl_header)
        config = self._routes.get(alias) or CacheConfig()
        exact_on, semantic_on = config.exact.enabled, config.semantic.enabled and self._semantic is not None
        if directive is None and not exact_on and not semantic_on:
            return None
        key = cache_key(project_id, alias, body, prompt_version(attributes))
        plan = CachePlan(project_id, alias, key, False, False, False, ttl or config.exact.ttl_s, config)
        if is_sampled(body) and not config.exact.allow_sampled:
            return plan  # bypass: a sampled answer is one draw, not the answer
        on = directive == "use" or (directive is None and (exact_on or semantic_on))
        plan.lookup = directive in ("use", "no-store") or (directive is None and on)
        plan.store = directive in ("use", "refresh") or (directive is None and on)
        plan.semantic = semantic_on and (plan.lookup or plan.store)
        return plan

    async def lookup(self, plan: CachePlan, body: dict[str, Any]) -> dict[str, Any] | None:
        """The stored reply (plan.status becomes hit) or None (miss / bypass)."""
        stats = self._counters.get(plan.project_id, plan.alias)
        if not plan.lookup:
            plan.status = "miss" if plan.store else "bypass"
            stats.bypass += plan.status == "bypass"
            stats.misses += plan.status == "miss"
            return None
        now = self._clock.now_ns()
        try:
            found = await self._store.find(plan.project_id, plan.key, now)
            if found is None and plan.semantic and self._semantic is not None:
                near = await self._semantic.find(plan.project_id, plan.alias, body, plan.config, now)
                if near is not None:
                    plan.kind, plan.similarity = "semantic", near[2]
                    found = near[0], near[1]
        except Exception as exc:  # store down (Redis, database): serve from upstream, visibly, and keep nothing
            log.warning("cache lookup failed for route %r", plan.alias, exc_info=True)
            plan.status, plan.store, plan.error = "bypass", False, f"{type(exc).__name__}: {exc}"[:200]
            stats.bypass += 1
            return None
        if found is None:
            plan.status = "miss"
            stats.misses += 1
            return None
        plan.status, plan.saved_usd = "hit", float(found[1] or 0.0)
        stats.hits += 1
        stats.semantic_hits += plan.kind == _SEMANTIC_KIND
        stats.saved_usd += plan.saved_usd
        return found[0]

    async def store(self, plan: CachePlan, body: dict[str, Any], reply: dict[str, Any], cost: float | None) -> None:
        """Keep a successful reply (callers never pass errors)."""
        if not plan.store:
            return
        now = self._clock.now_ns()
        expires = now + plan.ttl_s * 1_000_000_000
        await self._store.put(
            plan.project_id, plan.key, alias=plan.alias, body=reply, cost_usd=cost, now_ns=now, expires_ns=expires
        )
        if plan.semantic and self._semantic is not None:
            ttl = plan.config.semantic.ttl_s
            await self._semantic.put(plan.project_id, plan.alias, body, reply, cost, ttl_s=ttl, now_ns=now)

    async def purge(self, project_id: str) -> int:
        """Delete every entry of one project (exact and semantic); counters restart."""
        removed = await self._store.purge(project_id)
        if self._semantic is not None:
            removed += await self._semantic.purge(project_id)
        for route in [r for r in self._counters.by_route if r[0] == project_id]:
            del self._counters.by_route[route]
        return removed

    async def stats(self, project_id: str) -> list[dict[str, Any]]:
        """Per route: hits, misses, hit rate, saved USD (this process since start), live entries, and the
        wrong-hit rate measured on the shipped labelled set at the route's semantic threshold."""
        now = self._clock.now_ns()
        exact = await self._store.count(project_id, now)
        semantic = await self._semantic.count(project_id, now) if self._semantic is not None else {}
        aliases = sorted(
            {a for a, c in self._routes.items() if c.exact.enabled or c.semantic.enabled}
            | set(exact)
            | set(semantic)
            | {a for p, a in self._counters.by_route if p == project_id}
        )
        return [await self._route_stats(project_id, alias, exact, semantic) for alias in aliases]

    async def _route_stats(
        self, project_id: str, alias: str, exact: dict[str, int], semantic: dict[str, int]
    ) -> dict[str, Any]:
        s = self._counters.by_route.get((project_id, alias), RouteStats())
        config = self._routes.get(alias) or CacheConfig()
        looked = s.hits + s.misses
        threshold = wrong = None
        if config.semantic.enabled and self._semantic is not None:
            threshold = self._semantic.threshold_for(config)
            wrong = await self._semantic.measured_wrong_hit_rate(threshold, guard=config.semantic.guard)
        return {
            "model": alias,
            "exact_enabled": config.exact.enabled,
            "semantic_enabled": threshold is not None,
            "semantic_threshold": threshold,
            "hits": s.hits,
            "semantic_hits": s.semantic_hits,
            "misses": s.misses,
            "bypassed": s.bypass,
            "hit_rate": round(s.hits / looked, 4) if looked else None,
            "wrong_hit_rate_measured": wrong,
            "entries": exact.get(alias, 0),
            "semantic_entries": semantic.get(alias, 0),
            "saved_usd": round(s.saved_usd, 8),
        }


def replay_chunks(reply: dict[str, Any], *, include_usage: bool, piece_chars: int = 48) -> Iterator[dict[str, Any]]:
    """A stored completion as the chunks of a proper stream: role, content pieces, tool calls, finish, usage."""
    base = {
        "id": reply.get("id") or "chatcmpl-cache",
        "object": "chat.completion.chunk",
        "created": int(reply.get("created") or time.time()),
        "model": reply.get("model"),
    }
    if reply.get("system_fingerprint"):
        base["system_fingerprint"] = reply["system_fingerprint"]

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    for choice in reply.get("choices") or []:
        index, message = int(choice.get("index") or 0), choice.get("message") or {}
        yield chunk(index, {"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for start in range(0, len(text), piece_chars):
            yield chunk(index, {"content": text[start : start + piece_chars]})
        for i, call in enumerate(message.get("tool_calls") or []):
            yield chunk(index, {"tool_calls": [{"index": i, **call}]})
        yield chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage:
        yield {**base, "choices": [], "usage": reply.get("usage")}


def completion_from_stream(
    *,
    response_id: str | None,
    model: str | None,
    text: str,
    tool_calls: list[dict[str, Any]],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The completion a finished stream amounts to (what the cache stores for a streamed miss)."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = [{"type": "function", **c} for c in tool_calls]
    return {
        "id": response_id or "chatcmpl-cache",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason or "stop"}],
        "usage": usage,
    }
