"""gateway response caches: exact and semantic cache entries (owned by the cache work)

- ``cache_entries``: one stored chat completion per ``(project_id, cache_key)``; ``cache_key`` is the sha256 of the
  canonical request (see ``llmops.gateway.cache.cache_key``), so an entry can never be found from another project.
  ``body`` is the completion JSON, ``cost_usd`` what the original call cost (the saving of every hit).
- ``semantic_cache_entries``: the same plus the route (``alias``), ``context_hash`` (everything but the last user
  message, which must match exactly), the question text and its embedding (float32 bytes, 384 dims).
Budgets and rate limits live in 0011.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_cache_entries_expires", "cache_entries", ["expires_ns"])
    op.create_table(
        "semantic_cache_entries",
        sa.Column("entry_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("context_hash", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_semantic_cache_route", "semantic_cache_entries", ["project_id", "alias"])


def downgrade() -> None:
    op.drop_index("ix_semantic_cache_route", table_name="semantic_cache_entries")
    op.drop_table("semantic_cache_entries")
    op.drop_index("ix_cache_entries_expires", table_name="cache_entries")
    op.drop_table("cache_entries")
