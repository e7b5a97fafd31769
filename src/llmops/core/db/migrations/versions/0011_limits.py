"""budgets, spend counters, reservations and rate limits (owned by the budgets work)

Placeholder until its owner fills it in: the revision chain is fixed up front so parallel work never conflicts.

Revision ID: 0011
Revises: 0010
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
