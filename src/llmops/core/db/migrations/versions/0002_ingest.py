"""observability ingest: per-project trace privacy/retention settings, and the index that pages a trace's spans

- ``project_settings``: one row per project that changed its defaults; ``redaction`` is a JSON object
  (``secrets``, ``emails``, ``phones``, ``cards``, ``custom_patterns``), ``retention_days`` NULL means the
  server default (``LLMOPS_TRACING_RETENTION_DAYS``) and 0 keeps traces forever.
- ``ix_spans_project_trace_start``: ``(project_id, trace_id, start_ns, span_id)`` serves
  ``GET /api/traces/{id}/spans`` pages (and the first page of ``GET /api/traces/{id}``) straight from the
  index in (start_ns, span_id) order, so a 10,000-span trace's first page reads 500 rows, not 10,000.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_settings",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("redaction", sa.Text, nullable=False, server_default="{}"),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_spans_project_trace_start", "spans", ["project_id", "trace_id", "start_ns", "span_id"])


def downgrade() -> None:
    op.drop_index("ix_spans_project_trace_start", "spans")
    op.drop_table("project_settings")
