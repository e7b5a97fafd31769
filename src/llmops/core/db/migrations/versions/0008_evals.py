"""evaluation datasets, dataset versions and items, experiments, results (owned by the evals work)

Placeholder until its owner fills it in: the revision chain is fixed up front so parallel work never conflicts.

Revision ID: 0008
Revises: 0007
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
