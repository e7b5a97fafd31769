"""budgets, settled spend and rate limits (owned by the budgets / rate-limits work)

- ``budgets``: one USD limit per project and scope (``project`` | ``key`` | ``user`` | ``tag``, the ``subject`` being
  the key id, end-user id or tag; empty for the project), per ``period`` (``day`` | ``month`` | ``total``), ``hard``
  (refuse) or ``soft`` (warn); ``exempt_admin`` lets admin keys through (off by default: no bypass).
- ``budget_spend``: settled spend per budget and period start (epoch seconds, UTC; 0 for ``total``). Reservations in
  flight are not stored here (in-process counters, or Redis with ``LLMOPS_REDIS_URL``).
- ``rate_limits``: requests/min and tokens/min per key (``subject`` = key id) or end user (``subject`` = user id, or
  ``*`` for every user of the project).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("limit_usd", sa.Float, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("exempt_admin", sa.Boolean, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_budgets_project", "budgets", ["project_id"])
    op.create_table(
        "budget_spend",
        sa.Column("budget_id", sa.String(64), primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),
        sa.Column("spent_usd", sa.Float, nullable=False),
    )
    op.create_table(
        "rate_limits",
        sa.Column("limit_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "scope", "subject", name="uq_rate_limits_subject"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("budget_spend")
    op.drop_index("ix_budgets_project", table_name="budgets")
    op.drop_table("budgets")
