"""evaluation experiments (run records and target specs; owned by the evals work)

Placeholder until its owner fills it in: the revision chain is fixed up front so parallel work never conflicts.

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
