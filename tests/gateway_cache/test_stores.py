"""The cache stores and the cache's rules, on real SQLite, PostgreSQL and Redis, with an injected clock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.gateway._cache_redis import RedisExactCacheStore
from llmops.gateway._cache_sql import SqlExactCacheStore
from llmops.gateway.cache import ExactCacheStore, MemoryFront, ResponseCache, cache_key
from llmops.gateway.config import CacheConfig

REPLY = {"id": "r1", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "4"}}]}
BODY = {"model": "m", "messages": [{"role": "user", "content": "2+2?"}], "temperature": 0}


class StepClock:
    def __init__(self) -> None:
        self.ns = time.time_ns()  # near real time: Redis expires keys by its own clock

    def now_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cache.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "c_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sql", "memory", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path) -> ExactCacheStore:  # type: ignore[no-untyped-def]
    if request.param == "redis":
        return RedisExactCacheStore(request.getfixturevalue("redis_url"))
    eng = create_db_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    upgrade(eng)
    return MemoryFront(SqlExactCacheStore(eng)) if request.param == "memory" else SqlExactCacheStore(eng)


def _cache(store: ExactCacheStore, clock: StepClock, **exact: object) -> ResponseCache:
    return ResponseCache(store, {"m": CacheConfig.model_validate({"exact": {"enabled": True, **exact}})}, clock=clock)


async def _round(cache: ResponseCache, project: str, body: dict = BODY, **kw: object) -> str:  # type: ignore[type-arg]
    plan = cache.plan(project, "m", body, header=kw.get("header"), ttl_header=kw.get("ttl"), attributes={})  # type: ignore[arg-type]
    assert plan is not None
    found = await cache.lookup(plan, body)
    if found is None:
        await cache.store(plan, body, REPLY, 0.25)
    else:
        assert found == REPLY
    return plan.status


async def test_sql_store_contract(engine: Engine) -> None:
    """find/put/count/purge on SQLite and PostgreSQL: per project, expired rows invisible, overwrite in place."""
    store, p, q = SqlExactCacheStore(engine), "proj_a", "proj_b"
    await store.put(p, "k1", alias="m", body=REPLY, cost_usd=0.5, now_ns=1, expires_ns=100)
    await store.put(p, "k1", alias="m", body={**REPLY, "id": "r2"}, cost_usd=0.5, now_ns=2, expires_ns=100)
    await store.put(p, "k2", alias="n", body=REPLY, cost_usd=None, now_ns=1, expires_ns=50)
    assert await store.find(p, "k1", 10) == ({**REPLY, "id": "r2"}, 0.5)
    assert await store.find(q, "k1", 10) is None
    assert await store.find(p, "k2", 60) is None  # expired
    assert await store.count(p, 10) == {"m": 1, "n": 1}
    assert await store.count(p, 60) == {"m": 1}
    assert await store.purge(q) == 0
    assert await store.purge(p) == 2
    assert await store.find(p, "k1", 10) is None


async def test_ttl_expiry_and_ttl_header(store: ExactCacheStore) -> None:
    """An entry is served until its TTL (route default or x-llmops-cache-ttl) passes, then it is a miss again."""
    clock = StepClock()
    cache = _cache(store, clock, ttl_s=60)
    project = "proj_" + uuid.uuid4().hex
    assert await _round(cache, project) == "miss"
    clock.ns += 59 * 10**9
    assert await _round(cache, project) == "hit"
    clock.ns += 2 * 10**9
    assert await _round(cache, project) == "miss"  # expired, stored again now with 60 s
    other = {**BODY, "seed": 1}
    assert await _round(cache, project, other, ttl="5") == "miss"
    clock.ns += 6 * 10**9
    assert await _round(cache, project, other) == "miss"  # its own 5 s TTL passed
    assert await _round(cache, project) == "hit"  # the 60 s entry is still fresh


async def test_redis_store_is_partitioned_and_purged_per_project(redis_url: str) -> None:
    """Redis mode: counts and purge see one project only; a second store (another replica) sees the same entries."""
    a, b = RedisExactCacheStore(redis_url), RedisExactCacheStore(redis_url)
    p, q = "proj_" + uuid.uuid4().hex, "proj_" + uuid.uuid4().hex
    try:
        now = time.time_ns()
        await a.put(p, "k", alias="m", body=REPLY, cost_usd=0.1, now_ns=now, expires_ns=now + 60 * 10**9)
        await a.put(q, "k", alias="m", body=REPLY, cost_usd=None, now_ns=now, expires_ns=now + 60 * 10**9)
        assert await b.find(p, "k", now) == (REPLY, 0.1)  # shared across replicas
        assert await b.find(q, "k", now) == (REPLY, None)
        assert await b.count(p, now) == {"m": 1}
        assert await b.purge(p) == 1
        assert await a.find(p, "k", now) is None and await a.find(q, "k", now) is not None
    finally:
        await a.purge(q)
        await a.aclose()
        await b.aclose()


def test_key_needs_a_project_and_covers_prompt_version() -> None:
    """No key without a tenant; the prompt version used is part of the key; stream/user are not."""
    with pytest.raises(ValueError, match="project"):
        cache_key("", "m", BODY)
    base = cache_key("p", "m", BODY)
    assert cache_key("q", "m", BODY) != base
    assert cache_key("p", "other", BODY) != base
    v1 = cache_key("p", "m", BODY, {"llmops.prompt.name": "greet", "llmops.prompt.version": 1})
    v2 = cache_key("p", "m", BODY, {"llmops.prompt.name": "greet", "llmops.prompt.version": 2})
    assert len({base, v1, v2}) == 3
    assert cache_key("p", "m", {**BODY, "stream": True, "user": "u"}) == base


async def test_prompt_version_changes_the_entry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same rendered request from prompt version 1 and version 2 are two entries (the plan reads the
    llmops.prompt.* attributes a prompt render leaves on the call context)."""
    eng = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(eng)
    cache = _cache(SqlExactCacheStore(eng), StepClock())
    statuses = []
    for version in (1, 2, 1):
        attrs = {"llmops.prompt.name": "greet", "llmops.prompt.version": version}
        plan = cache.plan("p", "m", BODY, header=None, ttl_header=None, attributes=attrs)
        assert plan is not None
        if await cache.lookup(plan, BODY) is None:
            await cache.store(plan, BODY, REPLY, None)
        statuses.append(plan.status)
    assert statuses == ["miss", "miss", "hit"]
    eng.dispose()


def test_sql_semantic_store_contract(engine: Engine) -> None:
    """add/load/count/purge of semantic entries on SQLite and PostgreSQL: per project and route, vectors round-trip
    as float32, expired rows are not loaded or counted."""
    import numpy as np

    from llmops.gateway._cache_sql import SqlSemanticCacheStore

    store = SqlSemanticCacheStore(engine)
    vec = np.linspace(-1, 1, 384, dtype=np.float32)

    def entry(project: str, alias: str, expires: int) -> dict:  # type: ignore[type-arg]
        return {
            "entry_id": uuid.uuid4().hex, "project_id": project, "alias": alias, "context_hash": "c" * 64,
            "question": "q?", "embedding": vec, "body": REPLY, "cost_usd": 0.5, "created_ns": 1, "expires_ns": expires,
        }  # fmt: skip

    store.add(entry("p", "m", 100))
    store.add(entry("p", "m", 10))
    store.add(entry("p", "n", 100))
    store.add(entry("q", "m", 100))
    rows = store.load("p", "m", 50)
    assert len(rows) == 1 and rows[0]["body"] == REPLY and np.array_equal(rows[0]["embedding"], vec)
    assert store.count("p", 50) == {"m": 1, "n": 1}
    assert store.purge("p") == 3
    assert store.load("p", "m", 0) == [] and store.count("q", 50) == {"m": 1}


class CountingStore(SqlExactCacheStore):
    """The SQL store, counting the lookups that reach the database."""

    reads = 0

    async def find_entry(self, project_id: str, key: str, now_ns: int):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().find_entry(project_id, key, now_ns)


async def test_memory_front_serves_repeat_hits_without_the_database_and_keeps_every_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Hits after the first come from memory; expiry, purge, tenants and refresh behave exactly as the store's;
    a restarted process (new front, same database) still finds the entry."""
    eng = create_db_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    upgrade(eng)
    clock = StepClock()
    backing = CountingStore(eng)
    cache = _cache(MemoryFront(backing), clock, ttl_s=60)
    assert await _round(cache, "p1") == "miss"  # stored: the front keeps a copy
    for _ in range(5):
        assert await _round(cache, "p1") == "hit"
    assert backing.reads == 1  # only the first lookup (the miss) went to the database
    assert await _round(cache, "p2") == "miss"  # another project: its own entry
    restarted = CountingStore(eng)
    assert await _round(_cache(MemoryFront(restarted), clock, ttl_s=60), "p1") == "hit"
    assert restarted.reads == 1
    clock.ns += 61 * 10**9
    assert await _round(cache, "p1") == "miss"  # expired in memory as in the store
    assert await cache.purge("p1") >= 1
    assert await _round(cache, "p1") == "miss"
    eng.dispose()


async def test_memory_front_is_bounded_by_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    eng = create_db_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    upgrade(eng)
    backing = CountingStore(eng)
    front = MemoryFront(backing, max_bytes=64 * 1024)
    now = time.time_ns()
    reply = {"choices": [{"message": {"content": "x" * 1000}}]}
    for i in range(200):
        await front.put("p", f"k{i}", alias="m", body=reply, cost_usd=0.0, now_ns=now, expires_ns=now + 10**12)
    assert front._bytes <= 64 * 1024
    assert await front.find("p", "k199", now) is not None and backing.reads == 0  # recent: in memory
    assert await front.find("p", "k0", now) is not None and backing.reads == 1  # evicted: from the database
    eng.dispose()
