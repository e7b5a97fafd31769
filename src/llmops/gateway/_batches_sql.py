"""SQLAlchemy Core store of files and batches (SQLite and PostgreSQL alike; migration 0006).

Implements ``files.FileStore`` and ``batches.BatchStore``. Every tenant-facing query filters by ``project_id``.
Methods are synchronous: the services call them in a worker thread. :meth:`record_result` inserts a line's result
and bumps the batch's counter in one transaction, and does neither when the line already has a result, so a line
is counted once even when it ran twice (a restart, or two processes).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from llmops.gateway.batches import ACTIVE, Batch
from llmops.gateway.files import FileRecord

_meta = sa.MetaData()

files_table = sa.Table(
    "files",
    _meta,
    sa.Column("file_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("filename", sa.String),
    sa.Column("purpose", sa.String),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("lines", sa.Integer),
    sa.Column("created_at", sa.BigInteger),
)
batches_table = sa.Table(
    "batches",
    _meta,
    sa.Column("batch_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("key_id", sa.String),
    sa.Column("key_name", sa.String),
    sa.Column("is_admin", sa.Boolean),
    sa.Column("endpoint", sa.String),
    sa.Column("input_file_id", sa.String),
    sa.Column("completion_window", sa.String),
    sa.Column("status", sa.String),
    sa.Column("metadata", sa.Text),
    sa.Column("errors", sa.Text),
    sa.Column("total", sa.Integer),
    sa.Column("completed", sa.Integer),
    sa.Column("failed", sa.Integer),
    sa.Column("output_file_id", sa.String),
    sa.Column("error_file_id", sa.String),
    sa.Column("created_at", sa.BigInteger),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("in_progress_at", sa.BigInteger),
    sa.Column("finalizing_at", sa.BigInteger),
    sa.Column("completed_at", sa.BigInteger),
    sa.Column("failed_at", sa.BigInteger),
    sa.Column("cancelling_at", sa.BigInteger),
    sa.Column("cancelled_at", sa.BigInteger),
    sa.Column("runner_id", sa.String),
    sa.Column("lease_until", sa.BigInteger),
)
results_table = sa.Table(
    "batch_results",
    _meta,
    sa.Column("batch_id", sa.String, primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("custom_id", sa.String),
    sa.Column("ok", sa.Boolean),
    sa.Column("line", sa.Text),
)
_JSON_FIELDS = ("metadata", "errors")


def _file(row: sa.Row[Any]) -> FileRecord:
    m = row._mapping
    return FileRecord(
        m["file_id"], m["project_id"], m["filename"], m["purpose"], int(m["bytes"]), int(m["lines"]),
        int(m["created_at"]),
    )  # fmt: skip


def _batch(row: sa.Row[Any]) -> Batch:
    m = dict(row._mapping)
    for name in _JSON_FIELDS:
        m[name] = orjson.loads(m[name]) if m[name] else None
    m["is_admin"] = bool(m["is_admin"])
    return Batch(**m)


def _dump(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (orjson.dumps(v).decode() if k in _JSON_FIELDS and v is not None else v) for k, v in fields.items()}


class SqlBatchStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    # --- files ---
    def insert_file(self, record: FileRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(files_table.insert().values(**record.__dict__))

    def find_file(self, project_id: str, file_id: str) -> FileRecord | None:
        t = files_table
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.file_id == file_id, t.c.project_id == project_id)).first()
        return _file(row) if row else None

    def list_files(self, project_id: str, *, purpose: str | None, after: str | None, limit: int) -> list[FileRecord]:
        t = files_table
        q = sa.select(t).where(t.c.project_id == project_id)
        if purpose:
            q = q.where(t.c.purpose == purpose)
        if after:
            q = q.where(t.c.file_id < after)
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.file_id.desc()).limit(limit)).all()
        return [_file(r) for r in rows]

    def delete_file(self, project_id: str, file_id: str) -> bool:
        t = files_table
        with self._engine.begin() as conn:
            done = conn.execute(sa.delete(t).where(t.c.file_id == file_id, t.c.project_id == project_id))
        return done.rowcount > 0

    def file_in_use(self, project_id: str, file_id: str) -> bool:
        b = batches_table
        q = sa.select(b.c.batch_id).where(
            b.c.project_id == project_id, b.c.input_file_id == file_id, b.c.status.in_(ACTIVE)
        )
        with self._engine.connect() as conn:
            return conn.execute(q.limit(1)).first() is not None

    # --- batches ---
    def insert_batch(self, batch: Batch) -> None:
        with self._engine.begin() as conn:
            conn.execute(batches_table.insert().values(**_dump(batch.__dict__)))

    def find_batch(self, batch_id: str, project_id: str | None = None) -> Batch | None:
        b = batches_table
        q = sa.select(b).where(b.c.batch_id == batch_id)
        if project_id is not None:
            q = q.where(b.c.project_id == project_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _batch(row) if row else None

    def list_batches(self, project_id: str, *, after: str | None, limit: int) -> list[Batch]:
        b = batches_table
        q = sa.select(b).where(b.c.project_id == project_id)
        if after:
            q = q.where(b.c.batch_id < after)
        with self._engine.connect() as conn:
            rows = conn.execute(q.order_by(b.c.batch_id.desc()).limit(limit)).all()
        return [_batch(r) for r in rows]

    def active_batches(self) -> list[Batch]:
        b = batches_table
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(b).where(b.c.status.in_(ACTIVE)).order_by(b.c.batch_id)).all()
        return [_batch(r) for r in rows]

    def transition(self, batch_id: str, from_status: tuple[str, ...], to_status: str, **fields: Any) -> bool:
        """Move ``batch_id`` to ``to_status`` only from one of ``from_status`` (compare-and-set)."""
        b = batches_table
        stmt = (
            sa.update(b)
            .where(b.c.batch_id == batch_id, b.c.status.in_(from_status))
            .values(status=to_status, **_dump(fields))
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def claim(self, batch_id: str, runner_id: str, now: int, lease_s: int) -> bool:
        """Take (or keep) the lease of an active batch unless another live runner holds it."""
        b = batches_table
        free = sa.or_(b.c.runner_id.is_(None), b.c.runner_id == runner_id, b.c.lease_until < now)
        stmt = (
            sa.update(b)
            .where(b.c.batch_id == batch_id, b.c.status.in_(ACTIVE), free)
            .values(runner_id=runner_id, lease_until=now + lease_s)
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def renew(self, runner_id: str, now: int, lease_s: int) -> None:
        b = batches_table
        with self._engine.begin() as conn:
            conn.execute(sa.update(b).where(b.c.runner_id == runner_id).values(lease_until=now + lease_s))

    def release(self, runner_id: str, batch_id: str | None = None) -> None:
        b = batches_table
        stmt = sa.update(b).where(b.c.runner_id == runner_id)
        if batch_id is not None:
            stmt = stmt.where(b.c.batch_id == batch_id)
        with self._engine.begin() as conn:
            conn.execute(stmt.values(runner_id=None, lease_until=None))

    def record_result(self, batch_id: str, line_no: int, custom_id: str | None, ok: bool, line: bytes) -> bool:
        r, b = results_table, batches_table
        row = {"batch_id": batch_id, "line_no": line_no, "custom_id": custom_id, "ok": ok, "line": line.decode()}
        with self._engine.begin() as conn:
            stmt = self._insert(r).values(**row).on_conflict_do_nothing().returning(r.c.line_no)
            inserted = conn.execute(stmt).first() is not None  # rowcount is not reliable here on psycopg
            if inserted:
                counter = b.c.completed if ok else b.c.failed
                conn.execute(sa.update(b).where(b.c.batch_id == batch_id).values({counter: counter + 1}))
        return inserted

    def done_lines(self, batch_id: str) -> set[int]:
        r = results_table
        with self._engine.connect() as conn:
            return set(conn.execute(sa.select(r.c.line_no).where(r.c.batch_id == batch_id)).scalars())

    def result_lines(self, batch_id: str, *, ok: bool) -> list[bytes]:
        r = results_table
        q = sa.select(r.c.line).where(r.c.batch_id == batch_id, r.c.ok == ok).order_by(r.c.line_no)
        with self._engine.connect() as conn:
            return [line.encode() for line in conn.execute(q).scalars()]
