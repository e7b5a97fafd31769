"""SQLAlchemy Core implementation of :class:`~llmops.evals.review.ReviewStore` and
:class:`~llmops.evals.online.OnlineRuleStore` (SQLite and PostgreSQL; tables from migration 0009).

Every query filters by ``project_id`` except :meth:`SqlReviewStore.list_rules` with ``None`` and
:meth:`SqlReviewStore.advance`, which only the background worker calls (it acts for every project's rules).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llmops.core.errors import ConflictError
from llmops.evals.online import OnlineRule, RuleFilter
from llmops.evals.review import Queue, ReviewItem, ScoreConfig

_meta = sa.MetaData()
configs = sa.Table(
    "review_score_configs",
    _meta,
    sa.Column("config_id", sa.String, primary_key=True),
    *(
        sa.Column(n, t)
        for n, t in [
            ("project_id", sa.String),
            ("name", sa.String),
            ("data_type", sa.String),
            ("min_value", sa.Float),
            ("max_value", sa.Float),
            ("categories", sa.Text),
            ("description", sa.Text),
            ("created_ns", sa.BigInteger),
        ]
    ),
)
queues = sa.Table(
    "review_queues",
    _meta,
    sa.Column("queue_id", sa.String, primary_key=True),
    *(
        sa.Column(n, t)
        for n, t in [
            ("project_id", sa.String),
            ("name", sa.String),
            ("description", sa.Text),
            ("config_names", sa.Text),
            ("reviewers", sa.Text),
            ("source", sa.Text),
            ("created_ns", sa.BigInteger),
        ]
    ),
)
items = sa.Table(
    "review_items",
    _meta,
    sa.Column("item_id", sa.String, primary_key=True),
    *(
        sa.Column(n, t)
        for n, t in [
            ("queue_id", sa.String),
            ("project_id", sa.String),
            ("position", sa.Integer),
            ("trace_id", sa.String),
            ("status", sa.String),
            ("reviewer", sa.String),
            ("labels", sa.Text),
            ("correction", sa.Text),
            ("comment", sa.Text),
            ("updated_ns", sa.BigInteger),
        ]
    ),
)
rules = sa.Table(
    "online_rules",
    _meta,
    sa.Column("rule_id", sa.String, primary_key=True),
    *(
        sa.Column(n, t)
        for n, t in [
            ("project_id", sa.String),
            ("name", sa.String),
            ("filter", sa.Text),
            ("sample_rate", sa.Float),
            ("delay_s", sa.Float),
            ("scorers", sa.Text),
            ("enabled", sa.Boolean),
            ("cursor_ns", sa.BigInteger),
            ("cursor_trace_id", sa.String),
            ("scored", sa.BigInteger),
            ("failed", sa.BigInteger),
            ("created_ns", sa.BigInteger),
        ]
    ),
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _config(m: Any) -> ScoreConfig:
    return ScoreConfig(
        m["config_id"],
        m["project_id"],
        m["name"],
        m["data_type"],
        m["min_value"],
        m["max_value"],
        tuple(orjson.loads(m["categories"])),
        m["description"],
        m["created_ns"],
    )


def _queue(m: Any, counts: dict[str, int]) -> Queue:
    return Queue(
        m["queue_id"],
        m["project_id"],
        m["name"],
        tuple(orjson.loads(m["config_names"])),
        tuple(orjson.loads(m["reviewers"])),
        orjson.loads(m["source"]),
        m["created_ns"],
        m["description"],
        {"pending": 0, "done": 0, "skipped": 0, **counts},
    )


def _item(m: Any) -> ReviewItem:
    return ReviewItem(**{**dict(m), "labels": orjson.loads(m["labels"])})


def _rule(m: Any) -> OnlineRule:
    f = orjson.loads(m["filter"])
    return OnlineRule(
        m["rule_id"],
        m["project_id"],
        m["name"],
        RuleFilter(f.get("model"), f.get("name"), tuple(f.get("tags") or ())),
        m["sample_rate"],
        m["delay_s"],
        tuple(orjson.loads(m["scorers"])),
        bool(m["enabled"]),
        m["cursor_ns"],
        m["cursor_trace_id"],
        m["scored"],
        m["failed"],
        m["created_ns"],
    )


class SqlReviewStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _insert_unique(self, table: sa.Table, values: dict[str, Any], what: str) -> None:
        exists = sa.select(table.c.name).where(
            table.c.project_id == values["project_id"], table.c.name == values["name"]
        )
        try:
            with self._engine.begin() as conn:
                if conn.execute(exists).first() is not None:
                    raise ConflictError(f"{what} {values['name']!r} already exists", param="name")
                conn.execute(table.insert().values(**values))
        except IntegrityError as exc:
            raise ConflictError(f"{what} {values['name']!r} already exists", param="name") from exc

    # score configs
    def insert_config(self, config: ScoreConfig) -> None:
        values = {**config.__dict__, "categories": _dumps(list(config.categories))}
        self._insert_unique(configs, values, "score config")

    def list_configs(self, project_id: str) -> list[ScoreConfig]:
        q = sa.select(configs).where(configs.c.project_id == project_id).order_by(configs.c.name)
        with self._engine.connect() as conn:
            return [_config(r._mapping) for r in conn.execute(q)]

    def find_config(self, project_id: str, name: str) -> ScoreConfig | None:
        q = sa.select(configs).where(configs.c.project_id == project_id, configs.c.name == name)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _config(row._mapping) if row else None

    def delete_config(self, project_id: str, name: str) -> bool:
        q = configs.delete().where(configs.c.project_id == project_id, configs.c.name == name)
        with self._engine.begin() as conn:
            return conn.execute(q).rowcount > 0

    # queues and items
    def insert_queue(self, queue: Queue, new_items: list[ReviewItem]) -> None:
        values = {
            "queue_id": queue.queue_id,
            "project_id": queue.project_id,
            "name": queue.name,
            "description": queue.description,
            "config_names": _dumps(list(queue.config_names)),
            "reviewers": _dumps(list(queue.reviewers)),
            "source": _dumps(dict(queue.source)),
            "created_ns": queue.created_ns,
        }
        exists = sa.select(queues.c.name).where(queues.c.project_id == queue.project_id, queues.c.name == queue.name)
        try:
            with self._engine.begin() as conn:
                if conn.execute(exists).first() is not None:
                    raise ConflictError(f"queue {queue.name!r} already exists", param="name")
                conn.execute(queues.insert().values(**values))
                if new_items:
                    conn.execute(items.insert(), [self._item_values(i) for i in new_items])
        except IntegrityError as exc:
            raise ConflictError(f"queue {queue.name!r} already exists", param="name") from exc

    @staticmethod
    def _item_values(item: ReviewItem) -> dict[str, Any]:
        return {**item.__dict__, "labels": _dumps(dict(item.labels))}

    def _counts(self, conn: sa.Connection, project_id: str, queue_ids: list[str]) -> dict[str, dict[str, int]]:
        q = (
            sa.select(items.c.queue_id, items.c.status, sa.func.count())
            .where(items.c.project_id == project_id, items.c.queue_id.in_(queue_ids))
            .group_by(items.c.queue_id, items.c.status)
        )
        out: dict[str, dict[str, int]] = {}
        for queue_id, status, n in conn.execute(q):
            out.setdefault(queue_id, {})[status] = int(n)
        return out

    def list_queues(self, project_id: str) -> list[Queue]:
        q = sa.select(queues).where(queues.c.project_id == project_id).order_by(queues.c.created_ns.desc())
        with self._engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(q)]
            counts = self._counts(conn, project_id, [r["queue_id"] for r in rows]) if rows else {}
        return [_queue(r, counts.get(r["queue_id"], {})) for r in rows]

    def find_queue(self, project_id: str, queue_id: str) -> Queue | None:
        q = sa.select(queues).where(queues.c.project_id == project_id, queues.c.queue_id == queue_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
            if row is None:
                return None
            counts = self._counts(conn, project_id, [queue_id])
        return _queue(row._mapping, counts.get(queue_id, {}))

    def list_items(self, project_id: str, queue_id: str, status: str | None) -> list[ReviewItem]:
        q = sa.select(items).where(items.c.project_id == project_id, items.c.queue_id == queue_id)
        if status is not None:
            q = q.where(items.c.status == status)
        with self._engine.connect() as conn:
            return [_item(r._mapping) for r in conn.execute(q.order_by(items.c.position))]

    def find_item(self, project_id: str, queue_id: str, item_id: str) -> ReviewItem | None:
        c = items.c
        q = sa.select(items).where(c.project_id == project_id, c.queue_id == queue_id, c.item_id == item_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _item(row._mapping) if row else None

    def update_item(self, item: ReviewItem) -> None:
        values = self._item_values(item)
        q = items.update().where(items.c.project_id == item.project_id, items.c.item_id == item.item_id)
        with self._engine.begin() as conn:
            conn.execute(q.values(**{k: v for k, v in values.items() if k not in ("item_id", "project_id")}))

    # online rules
    def insert_rule(self, rule: OnlineRule) -> None:
        values = {
            **rule.__dict__,
            "filter": _dumps(rule.filter.to_dict()),
            "scorers": _dumps([dict(s) for s in rule.scorers]),
        }
        self._insert_unique(rules, values, "online rule")

    def list_rules(self, project_id: str | None) -> list[OnlineRule]:
        q = sa.select(rules).order_by(rules.c.created_ns)
        if project_id is not None:
            q = q.where(rules.c.project_id == project_id)
        with self._engine.connect() as conn:
            return [_rule(r._mapping) for r in conn.execute(q)]

    def find_rule(self, project_id: str, rule_id: str) -> OnlineRule | None:
        q = sa.select(rules).where(rules.c.project_id == project_id, rules.c.rule_id == rule_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _rule(row._mapping) if row else None

    def set_enabled(self, project_id: str, rule_id: str, enabled: bool) -> bool:
        q = rules.update().where(rules.c.project_id == project_id, rules.c.rule_id == rule_id)
        with self._engine.begin() as conn:
            return conn.execute(q.values(enabled=enabled)).rowcount > 0

    def delete_rule(self, project_id: str, rule_id: str) -> bool:
        q = rules.delete().where(rules.c.project_id == project_id, rules.c.rule_id == rule_id)
        with self._engine.begin() as conn:
            return conn.execute(q).rowcount > 0

    def advance(self, rule_id: str, cursor: tuple[int, str], *, scored: int, failed: int) -> None:
        c = rules.c
        behind = sa.tuple_(c.cursor_ns, c.cursor_trace_id) < sa.tuple_(sa.literal(cursor[0]), sa.literal(cursor[1]))
        with self._engine.begin() as conn:
            conn.execute(
                rules.update().where(c.rule_id == rule_id).values(scored=c.scored + scored, failed=c.failed + failed)
            )
            conn.execute(
                rules.update()
                .where(c.rule_id == rule_id, behind)
                .values(cursor_ns=cursor[0], cursor_trace_id=cursor[1])
            )
