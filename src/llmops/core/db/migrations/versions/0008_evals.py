"""evaluation datasets, dataset versions and items, experiments, results (owned by the evals work)

Placeholder until its owner fills it in: the revision chain is fixed up front so parallel work never conflicts.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_datasets",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_eval_datasets_project_name", "eval_datasets", ["project_id", "name"], unique=True)
    op.create_table(
        "eval_dataset_items",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "eval_results",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_table("eval_dataset_items")
    op.drop_index("ux_eval_datasets_project_name", table_name="eval_datasets")
    op.drop_table("eval_datasets")
