"""SQLAlchemy Core store of budgets, settled spend and rate limits (SQLite and PostgreSQL alike; migration 0011).

Every definition query filters by ``project_id``. Methods are synchronous: the services call them in a worker
thread, never on the event loop. Settled spend is added with one upsert per counter (``spent = spent + x``), so
concurrent writers (several processes) never lose an amount.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from llmops.gateway.budgets import NANO, Budget
from llmops.gateway.ratelimits import RateLimit

_meta = sa.MetaData()

budgets_table = sa.Table(
    "budgets",
    _meta,
    sa.Column("budget_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("name", sa.String),
    sa.Column("scope", sa.String),
    sa.Column("subject", sa.String),
    sa.Column("period", sa.String),
    sa.Column("limit_usd", sa.Float),
    sa.Column("mode", sa.String),
    sa.Column("exempt_admin", sa.Boolean),
    sa.Column("created_ns", sa.BigInteger),
)
spend_table = sa.Table(
    "budget_spend",
    _meta,
    sa.Column("budget_id", sa.String, primary_key=True),
    sa.Column("period_start", sa.BigInteger, primary_key=True),
    sa.Column("spent_usd", sa.Float),
)
rate_limits_table = sa.Table(
    "rate_limits",
    _meta,
    sa.Column("limit_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("scope", sa.String),
    sa.Column("subject", sa.String),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
    sa.Column("created_ns", sa.BigInteger),
)


def _budget(row: sa.Row[tuple[object, ...]]) -> Budget:
    m = row._mapping
    return Budget(
        m["budget_id"], m["project_id"], m["name"], m["scope"], m["subject"], m["period"], float(m["limit_usd"]),
        m["mode"], bool(m["exempt_admin"]), int(m["created_ns"]),
    )  # fmt: skip


def _rate_limit(row: sa.Row[tuple[object, ...]]) -> RateLimit:
    m = row._mapping
    return RateLimit(m["limit_id"], m["project_id"], m["scope"], m["subject"], m["rpm"], m["tpm"], int(m["created_ns"]))


class SqlLimitsStore:
    """Implements ``budgets.BudgetStore`` and ``ratelimits.RateLimitStore``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    # --- budgets ---
    def insert_budget(self, budget: Budget) -> None:
        with self._engine.begin() as conn:
            conn.execute(budgets_table.insert().values(**budget.__dict__))

    def list_budgets(self, project_id: str) -> list[Budget]:
        t = budgets_table
        with self._engine.connect() as conn:
            rows = conn.execute(t.select().where(t.c.project_id == project_id).order_by(t.c.created_ns)).all()
        return [_budget(r) for r in rows]

    def find_budget(self, project_id: str, budget_id: str) -> Budget | None:
        t = budgets_table
        with self._engine.connect() as conn:
            row = conn.execute(t.select().where(t.c.project_id == project_id, t.c.budget_id == budget_id)).first()
        return _budget(row) if row is not None else None

    def delete_budget(self, project_id: str, budget_id: str) -> bool:
        t = budgets_table
        with self._engine.begin() as conn:
            gone = conn.execute(t.delete().where(t.c.project_id == project_id, t.c.budget_id == budget_id))
            if gone.rowcount:
                conn.execute(spend_table.delete().where(spend_table.c.budget_id == budget_id))
        return bool(gone.rowcount)

    # --- settled spend (nano-dollars in, USD stored) ---
    def spent(self, budget_id: str, period_start: int) -> int:
        t = spend_table
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(t.c.spent_usd).where(t.c.budget_id == budget_id, t.c.period_start == period_start)
            ).scalar()
        return round((value or 0.0) * NANO)

    def add_spend(self, amounts: dict[tuple[str, int], int]) -> None:
        t = spend_table
        with self._engine.begin() as conn:
            for (budget_id, period_start), units in amounts.items():
                stmt = self._insert(t).values(budget_id=budget_id, period_start=period_start, spent_usd=units / NANO)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[t.c.budget_id, t.c.period_start],
                        set_={"spent_usd": t.c.spent_usd + stmt.excluded.spent_usd},
                    )
                )

    # --- rate limits ---
    def upsert_rate_limit(self, limit: RateLimit) -> RateLimit:
        t = rate_limits_table
        key = (t.c.project_id == limit.project_id, t.c.scope == limit.scope, t.c.subject == limit.subject)
        with self._engine.begin() as conn:
            row = conn.execute(t.select().where(*key)).first()
            if row is None:
                conn.execute(t.insert().values(**limit.__dict__))
                return limit
            conn.execute(t.update().where(*key).values(rpm=limit.rpm, tpm=limit.tpm))
            return RateLimit(
                row.limit_id, limit.project_id, limit.scope, limit.subject, limit.rpm, limit.tpm, row.created_ns
            )

    def list_rate_limits(self, project_id: str) -> list[RateLimit]:
        t = rate_limits_table
        with self._engine.connect() as conn:
            rows = conn.execute(t.select().where(t.c.project_id == project_id).order_by(t.c.created_ns)).all()
        return [_rate_limit(r) for r in rows]

    def delete_rate_limit(self, project_id: str, limit_id: str) -> bool:
        t = rate_limits_table
        with self._engine.begin() as conn:
            gone = conn.execute(t.delete().where(t.c.project_id == project_id, t.c.limit_id == limit_id))
        return bool(gone.rowcount)
