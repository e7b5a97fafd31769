"""evaluation experiments: one row per run (dataset version, target spec, fingerprint, status, counts)

Per-item results stay in ``eval_results`` (0008) under the run id; this table is the run's record, so runs can
be listed, started in the background, cancelled and resumed.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_experiments",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("target", sa.Text, nullable=False),  # JSON target spec
        sa.Column("scorers", sa.Text, nullable=False),  # JSON list of scorer specs
        sa.Column("params", sa.Text, nullable=False),  # JSON: concurrency, timeout_s
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("started_ns", sa.BigInteger, nullable=True),
        sa.Column("finished_ns", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_eval_experiments_project_created", "eval_experiments", ["project_id", "created_ns"])


def downgrade() -> None:
    op.drop_index("ix_eval_experiments_project_created", table_name="eval_experiments")
    op.drop_table("eval_experiments")
