"""RAG on PostgreSQL with pgvector: ``rag_chunks.embedding_vec vector(384)`` and an HNSW index (cosine)

Only where ``CREATE EXTENSION IF NOT EXISTS vector`` succeeds (the extension is installed on the server and
the role may create it, or it exists already). Elsewhere (SQLite; PostgreSQL without pgvector) this migration
changes nothing and the RAG store keeps searching with its in-process index over ``rag_chunks.embedding``.
The store decides by the presence of the column, so a server that gains pgvector later keeps the in-process
path until the column is added (downgrade to 0011 and upgrade again).

Existing chunks are back-filled from ``rag_chunks.embedding`` (float32 bytes). The bytes column stays the
source of truth for every other reader (corpus health, evaluation); ``embedding_vec`` is written beside it.

Revision ID: 0012
Revises: 0011
"""

import logging

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

log = logging.getLogger("llmops.db")
_BATCH = 1000


def _create_extension(bind: sa.Connection) -> bool:
    """True if pgvector is (now) installed in this database; a failure is rolled back to a savepoint."""
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.info("pgvector not available (%s): RAG keeps the in-process vector index", exc.orig)
        return False
    savepoint.commit()
    return True


def _backfill(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT chunk_id, embedding FROM rag_chunks")).all()
    update = sa.text("UPDATE rag_chunks SET embedding_vec = CAST(:v AS vector) WHERE chunk_id = :i")
    for start in range(0, len(rows), _BATCH):
        params = [
            {"i": r[0], "v": "[" + ",".join(map(str, np.frombuffer(r[1], dtype=np.float32).tolist())) + "]"}
            for r in rows[start : start + _BATCH]
        ]
        bind.execute(update, params)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _create_extension(bind):
        return
    op.execute("ALTER TABLE rag_chunks ADD COLUMN embedding_vec vector(384)")
    _backfill(bind)
    op.execute(
        "CREATE INDEX ix_rag_chunks_embedding_hnsw ON rag_chunks "
        "USING hnsw (embedding_vec vector_cosine_ops) WITH (m = 16, ef_construction = 128)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_rag_chunks_embedding_hnsw")
    op.execute("ALTER TABLE rag_chunks DROP COLUMN IF EXISTS embedding_vec")
