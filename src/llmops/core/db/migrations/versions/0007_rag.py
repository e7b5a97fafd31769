"""RAG collections, documents, versions, chunks, index versions, corpus-health findings (owned by the RAG work)

RAG core tables (``llmops.rag``); every table carries ``project_id`` and every query filters by it:

- ``rag_collections``: ``(project_id, collection)`` is the key; chunking settings and the current
  ``index_version``.
- ``rag_documents``: the current state of each document, key ``(project_id, collection, document_id)``;
  ``deleted_ns`` set when a document is removed (its history stays in ``rag_document_versions``).
- ``rag_document_versions``: append-only history (full text of every version, ``deleted`` marks removal).
- ``rag_chunks``: chunks of the current version of each live document, with the embedding as float32 bytes.
- ``rag_index_versions``: one row per successful ingest (counts of added/updated/removed/embedded/reused).
- ``rag_chunk_search``: keyword index of chunk text. SQLite: FTS5 virtual table (bm25);
  PostgreSQL: a ``tsvector`` column with a GIN index.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _rag_core_upgrade() -> None:
    op.create_table(
        "rag_collections",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunk_overlap", sa.Integer, nullable=False),
        sa.Column("embedder", sa.String(64), nullable=False),
        sa.Column("index_version", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rag_documents",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("document_id", sa.String(512), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("effective_ns", sa.BigInteger, nullable=True),
        sa.Column("retrieval_count", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("deleted_ns", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "rag_document_versions",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("document_id", sa.String(512), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("effective_ns", sa.BigInteger, nullable=True),
        sa.Column("index_version", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rag_chunks",
        sa.Column("chunk_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("document_id", sa.String(512), nullable=False),
        sa.Column("document_version", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("heading", sa.Text, nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.Column("start_offset", sa.Integer, nullable=False),
        sa.Column("end_offset", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_rag_chunks_document", "rag_chunks", ["project_id", "collection", "document_id", "position"])
    op.create_index("ix_rag_chunks_hash", "rag_chunks", ["project_id", "collection", "content_hash"])
    op.create_table(
        "rag_index_versions",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("embedded", sa.Integer, nullable=False),
        sa.Column("reused", sa.Integer, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunk_overlap", sa.Integer, nullable=False),
        sa.Column("embedder", sa.String(64), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE rag_chunk_search USING fts5(project_id UNINDEXED, collection UNINDEXED, "
            "chunk_id UNINDEXED, body, tokenize = 'porter unicode61')"
        )
    else:
        op.create_table(
            "rag_chunk_search",
            sa.Column("chunk_id", sa.String(64), primary_key=True),
            sa.Column("project_id", sa.String(64), nullable=False),
            sa.Column("collection", sa.String(128), nullable=False),
            sa.Column("body", postgresql.TSVECTOR, nullable=False),
        )
        op.create_index("ix_rag_chunk_search_body", "rag_chunk_search", ["body"], postgresql_using="gin")
        op.create_index("ix_rag_chunk_search_collection", "rag_chunk_search", ["project_id", "collection"])


def _rag_core_downgrade() -> None:
    op.drop_table("rag_chunk_search")
    op.drop_table("rag_index_versions")
    op.drop_index("ix_rag_chunks_hash", "rag_chunks")
    op.drop_index("ix_rag_chunks_document", "rag_chunks")
    op.drop_table("rag_chunks")
    op.drop_table("rag_document_versions")
    op.drop_table("rag_documents")
    op.drop_table("rag_collections")


# --- corpus health (rag_findings): owned by the health work, below this line ---


def _rag_health_upgrade() -> None:
    """``rag_findings``: corpus-health findings (contradictions, duplicates, stale, never retrieved, negative
    feedback). ``fingerprint`` identifies a finding across re-checks so that its status survives."""
    op.create_table(
        "rag_findings",
        sa.Column("finding_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subtype", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("document_ids", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("chunk_ids", sa.Text, nullable=False),
        sa.Column("passages", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ux_rag_findings_fingerprint", "rag_findings", ["project_id", "collection", "fingerprint"], unique=True
    )
    op.create_index("ix_rag_findings_kind", "rag_findings", ["project_id", "collection", "kind", "status"])


def _rag_health_downgrade() -> None:
    op.drop_index("ix_rag_findings_kind", "rag_findings")
    op.drop_index("ux_rag_findings_fingerprint", "rag_findings")
    op.drop_table("rag_findings")


def upgrade() -> None:
    _rag_core_upgrade()
    _rag_health_upgrade()


def downgrade() -> None:
    _rag_health_downgrade()
    _rag_core_downgrade()
