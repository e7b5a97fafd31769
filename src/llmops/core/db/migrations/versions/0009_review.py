"""human review: score configs, annotation queues and items, online evaluation rules (owned by the review work)

- ``review_score_configs``: what a label may be (numeric min/max, boolean, categorical allowed values);
  ``(project_id, name)`` is unique; ``categories`` is a JSON list.
- ``review_queues``: a named set of traces to label against some score configs, with assigned reviewers.
- ``review_items``: one trace in a queue, its status (pending/done/skipped), the reviewer's labels (JSON)
  and an optional corrected output.
- ``online_rules``: filter + sample rate + delay + scorer specs; ``cursor_ns``/``cursor_trace_id`` is the
  last trace scored (persisted, so a restart neither rescores nor skips); counters for the dashboard.
Every table carries ``project_id`` so that every query filters by the caller's project.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_score_configs",
        sa.Column("config_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("data_type", sa.String(16), nullable=False),
        sa.Column("min_value", sa.Float, nullable=True),
        sa.Column("max_value", sa.Float, nullable=True),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_review_score_configs_name", "review_score_configs", ["project_id", "name"], unique=True)
    op.create_table(
        "review_queues",
        sa.Column("queue_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("config_names", sa.Text, nullable=False),
        sa.Column("reviewers", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_review_queues_name", "review_queues", ["project_id", "name"], unique=True)
    op.create_table(
        "review_items",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("correction", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_review_items_queue", "review_items", ["queue_id", "position"])
    op.create_table(
        "online_rules",
        sa.Column("rule_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("filter", sa.Text, nullable=False),
        sa.Column("sample_rate", sa.Float, nullable=False),
        sa.Column("delay_s", sa.Float, nullable=False),
        sa.Column("scorers", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cursor_ns", sa.BigInteger, nullable=False),
        sa.Column("cursor_trace_id", sa.String(64), nullable=False),
        sa.Column("scored", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_online_rules_name", "online_rules", ["project_id", "name"], unique=True)


def downgrade() -> None:
    op.drop_table("online_rules")
    op.drop_table("review_items")
    op.drop_table("review_queues")
    op.drop_table("review_score_configs")
