"""Spans keep one trace-id index: the primary key ``(trace_id, span_id)``.

``ix_spans_project_trace_start (project_id, trace_id, start_ns, span_id)`` duplicated the primary key's
leading column. Trace ids come from clients and are random, so each index keyed by one dirties a random
page per span written: this one cost ~1.6 KB of WAL per span (6.1 -> 4.5 KB at 100k stored spans) and one
random B-tree insert, on the hottest write path (OTLP ingest, issue 3). Every read by trace id (a trace's
spans, their paging by ``(start_ns, span_id)``, "some span has attribute X", retention deletes) now uses the
primary key and sorts one trace's rows. Those queries write their project condition with
``tracing._sql_query.of_project``: SQLite's planner would otherwise take ``(project_id, start_ns)`` and read
the whole project (tests/tracing/test_query_plans.py).

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_spans_project_trace_start", table_name="spans")


def downgrade() -> None:
    op.create_index("ix_spans_project_trace_start", "spans", ["project_id", "trace_id", "start_ns", "span_id"])
