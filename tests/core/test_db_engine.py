"""The SQLite engine's tuning: writers never checkpoint a small WAL; the background checkpointer does."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from llmops.core.db import WalCheckpointer, create_db_engine
from llmops.core.db.engine import WAL_AUTOCHECKPOINT_PAGES


def test_background_checkpoints_keep_the_wal_from_growing(tmp_path: Path) -> None:
    """Connections carry the raised auto-checkpoint mark; with the checkpointer running, committed pages are
    copied into the database in the background (its counter moves), every committed row stays readable, and
    after stop() the thread is gone."""
    db = tmp_path / "t.db"
    engine = create_db_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    checkpointer = WalCheckpointer(engine, interval_s=0.05)
    checkpointer.start()
    try:
        for i in range(20):
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO t (body) VALUES (:b)"), [{"b": "x" * 2000}] * 200)
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpointer.checkpoints >= 3
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 4000
            busy, log_frames, checkpointed = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert busy == 0 and checkpointed == log_frames  # nothing left behind in the WAL
    finally:
        checkpointer.stop()
        engine.dispose()
    assert checkpointer._thread is None


def test_checkpointer_is_a_no_op_for_other_databases() -> None:
    """PostgreSQL (and in-memory SQLite) have nothing to checkpoint: start/stop do nothing."""
    engine = sa.create_engine("sqlite://")
    checkpointer = WalCheckpointer(engine)
    checkpointer.start()
    assert checkpointer._thread is None
    checkpointer.stop()
