"""Database engine and migrations (SQLAlchemy Core + Alembic) for SQLite and PostgreSQL alike."""

from llmops.core.db.engine import WalCheckpointer, create_db_engine, is_sqlite, upgrade

__all__ = ["WalCheckpointer", "create_db_engine", "is_sqlite", "upgrade"]
