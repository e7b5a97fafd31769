"""gateway cost and latency control: budgets, spend counters, exact/semantic cache entries

Placeholder until its owner fills it in: the revision chain is fixed up front so parallel work never conflicts.

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
