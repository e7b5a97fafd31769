"""scores, trace tags and full-text search over span inputs/outputs (owned by the query/feedback work)

- ``scores``: feedback and evaluation results on a trace or span; ``(project_id, idempotency_key)`` is unique
  (NULL keys never collide, on SQLite and PostgreSQL alike).
- ``traces.tags``: the trace's tags as ``\\x1ftag1\\x1ftag2\\x1f`` (see ``llmops.tracing._sql_query``).
- ``trace_search``: one row per span that has input/output text. SQLite: an FTS5 virtual table;
  PostgreSQL: a ``tsvector`` column with a GIN index. Filled by ``SqlTraceStore.insert_spans``.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("score_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("data_type", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("string_value", sa.String(200), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_scores_project_key", "scores", ["project_id", "idempotency_key"], unique=True)
    op.create_index("ix_scores_project_trace", "scores", ["project_id", "trace_id"])
    op.create_index("ix_scores_project_created", "scores", ["project_id", "created_ns"])
    op.create_index("ix_scores_project_name_created", "scores", ["project_id", "name", "created_ns"])
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("tags", sa.Text, nullable=True))
    op.create_index("ix_traces_project_session", "traces", ["project_id", "session_id", "start_ns"])
    op.create_index("ix_traces_project_user", "traces", ["project_id", "user_id", "start_ns"])
    if op.get_bind().dialect.name == "sqlite":
        # detail=none, columnsize=0: the smallest, cheapest index to write (no positions: no phrase queries)
        op.execute(
            "CREATE VIRTUAL TABLE trace_search USING fts5(project_id UNINDEXED, trace_id UNINDEXED, "
            "span_id UNINDEXED, body, tokenize = 'unicode61', detail = none, columnsize = 0)"
        )
    else:
        op.create_table(
            "trace_search",
            sa.Column("project_id", sa.String(64), nullable=False),
            sa.Column("trace_id", sa.String(32), nullable=False),
            sa.Column("span_id", sa.String(16), nullable=False),
            sa.Column("body", postgresql.TSVECTOR, nullable=False),
        )
        op.create_index("ix_trace_search_body", "trace_search", ["body"], postgresql_using="gin")
        op.create_index("ix_trace_search_trace", "trace_search", ["trace_id"])


def downgrade() -> None:
    op.drop_table("trace_search")
    op.drop_index("ix_traces_project_user", "traces")
    op.drop_index("ix_traces_project_session", "traces")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("tags")
    op.drop_table("scores")
