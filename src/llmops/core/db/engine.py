"""Engine factory and migration runner.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a crash of the
process (kill -9); see docs/architecture.md for the power-loss trade-off.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from llmops.core.threads import lower_thread_priority

_MIGRATIONS = Path(__file__).parent / "migrations"
# Writers never checkpoint below this WAL size (pages of 4 KiB): the background WalCheckpointer does it. The cap
# bounds the WAL when no checkpointer runs (CLI tools, a stalled thread).
WAL_AUTOCHECKPOINT_PAGES = 20_000
log = logging.getLogger("llmops.db")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cur.close()


class WalCheckpointer:
    """Checkpoints the SQLite WAL from a background thread every ``interval_s``.

    Why: with SQLite's default auto-checkpoint (every 1,000 WAL pages) the commit that crosses the mark copies
    the WAL into the database and fsyncs it *inside the writer's transaction*: measured at ~100 µs per span
    written once the database held ~100k spans (the write rate halved). A PASSIVE checkpoint from its own
    connection never blocks readers or the writer, and SQLite releases the GIL while it runs, so the copy
    happens on the other core, at a lowered priority. A no-op for PostgreSQL and in-memory databases."""

    def __init__(self, engine: Engine, *, interval_s: float = 0.5) -> None:
        database = engine.url.database if is_sqlite(engine) else None
        self._path = database if database and database != ":memory:" else None
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        if self._path is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llmops-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        lower_thread_priority()  # copying pages back is never urgent (llmops.core.threads)
        conn = sqlite3.connect(str(self._path), timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # thread boundary: a busy or vanished database must not kill the thread
                    log.warning("WAL checkpoint failed; will retry", exc_info=True)
        finally:
            conn.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


__all__ = ["create_db_engine", "is_sqlite", "upgrade", "NullPool"]
