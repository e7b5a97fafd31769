"""SQLAlchemy Core stores for the response caches (SQLite and PostgreSQL alike), tables from migration 0005.

Every query filters by ``project_id``. Calls run in a worker thread: the gateway's event loop does no database
work. Expired rows are never returned and are deleted when their key is written again or on purge.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

_meta = sa.MetaData()

cache_table = sa.Table(
    "cache_entries",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("cache_key", sa.String, primary_key=True),
    sa.Column("alias", sa.String),
    sa.Column("body", sa.Text),
    sa.Column("cost_usd", sa.Float),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("expires_ns", sa.BigInteger),
)

semantic_table = sa.Table(
    "semantic_cache_entries",
    _meta,
    sa.Column("entry_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("alias", sa.String),
    sa.Column("context_hash", sa.String),
    sa.Column("question", sa.Text),
    sa.Column("embedding", sa.LargeBinary),
    sa.Column("body", sa.Text),
    sa.Column("cost_usd", sa.Float),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("expires_ns", sa.BigInteger),
)


class SqlExactCacheStore:
    def __init__(self, engine: Engine, *, sweep_every: int = 500) -> None:
        self._engine = engine
        self._sweep_every, self._writes = sweep_every, 0
        t = cache_table
        self._find = sa.select(t.c.body, t.c.cost_usd, t.c.expires_ns).where(
            t.c.project_id == sa.bindparam("p"), t.c.cache_key == sa.bindparam("k"), t.c.expires_ns > sa.bindparam("n")
        )

    def _find_sync(self, project_id: str, key: str, now_ns: int) -> tuple[dict[str, Any], float | None, int] | None:
        with self._engine.connect() as conn:
            row = conn.execute(self._find, {"p": project_id, "k": key, "n": now_ns}).first()
        return (orjson.loads(row.body), row.cost_usd, int(row.expires_ns)) if row is not None else None

    async def find(self, project_id: str, key: str, now_ns: int) -> tuple[dict[str, Any], float | None] | None:
        found = await asyncio.to_thread(self._find_sync, project_id, key, now_ns)
        return (found[0], found[1]) if found is not None else None

    async def find_entry(
        self, project_id: str, key: str, now_ns: int
    ) -> tuple[dict[str, Any], float | None, int] | None:
        """Like :meth:`find`, with the entry's expiry (ns) — what :class:`MemoryFront` needs to keep a copy."""
        return await asyncio.to_thread(self._find_sync, project_id, key, now_ns)

    def _put_sync(self, row: dict[str, Any]) -> None:
        t = cache_table
        try:
            with self._engine.begin() as conn:
                conn.execute(t.delete().where(t.c.project_id == row["project_id"], t.c.cache_key == row["cache_key"]))
                conn.execute(t.insert().values(**row))
                self._writes += 1
                if self._writes % self._sweep_every == 0:  # expired rows go every N writes: no sweeper task needed
                    conn.execute(t.delete().where(t.c.expires_ns <= row["created_ns"]))
        except IntegrityError:  # a concurrent request stored the same key first: its entry is as good
            pass

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
        row = {
            "project_id": project_id,
            "cache_key": key,
            "alias": alias,
            "body": orjson.dumps(body).decode(),
            "cost_usd": cost_usd,
            "created_ns": now_ns,
            "expires_ns": expires_ns,
        }
        await asyncio.to_thread(self._put_sync, row)

    def _purge_sync(self, project_id: str) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(cache_table.delete().where(cache_table.c.project_id == project_id)).rowcount)

    async def purge(self, project_id: str) -> int:
        return await asyncio.to_thread(self._purge_sync, project_id)

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        return await asyncio.to_thread(_live_entries_by_alias, self._engine, cache_table, project_id, now_ns)


def _live_entries_by_alias(engine: Engine, t: sa.Table, project_id: str, now_ns: int) -> dict[str, int]:
    """Unexpired entries of a project per route alias (both cache tables share these columns)."""
    q = (
        sa.select(t.c.alias, sa.func.count())
        .where(t.c.project_id == project_id, t.c.expires_ns > now_ns)
        .group_by(t.c.alias)
    )
    with engine.connect() as conn:
        return {str(a): int(n) for a, n in conn.execute(q)}


class SqlSemanticCacheStore:
    """Durable copy of the semantic entries; the in-process index (``gateway.semantic_cache``) is rebuilt from it."""

    def __init__(self, engine: Engine, *, sweep_every: int = 500) -> None:
        self._engine = engine
        self._sweep_every, self._writes = sweep_every, 0

    def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        return _live_entries_by_alias(self._engine, semantic_table, project_id, now_ns)

    def load(self, project_id: str, alias: str, now_ns: int) -> list[dict[str, Any]]:
        t = semantic_table
        q = sa.select(t).where(t.c.project_id == project_id, t.c.alias == alias, t.c.expires_ns > now_ns)
        with self._engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                **dict(r),
                "embedding": np.frombuffer(r["embedding"], dtype=np.float32),
                "body": orjson.loads(r["body"]),
            }
            for r in rows
        ]

    def add(self, entry: dict[str, Any]) -> None:
        row = {
            **entry,
            "embedding": np.asarray(entry["embedding"], dtype=np.float32).tobytes(),
            "body": orjson.dumps(entry["body"]).decode(),
        }
        with self._engine.begin() as conn:
            conn.execute(semantic_table.insert().values(**row))
            self._writes += 1
            if self._writes % self._sweep_every == 0:  # expired rows go every N writes
                conn.execute(semantic_table.delete().where(semantic_table.c.expires_ns <= entry["created_ns"]))

    def purge(self, project_id: str) -> int:
        t = semantic_table
        with self._engine.begin() as conn:
            return int(conn.execute(t.delete().where(t.c.project_id == project_id)).rowcount)
