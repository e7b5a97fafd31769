"""SQLAlchemy Core implementation of :class:`~llmops.tracing.store.TraceSettingsStore` (SQLite and PostgreSQL).

One ``project_settings`` row per project that changed its defaults; the redaction policy is a JSON object so
new options need no migration (unknown keys are ignored on read, missing ones take their defaults).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.errors import StorageUnavailableError
from llmops.tracing.models import RedactionPolicy, TraceSettings

_meta = sa.MetaData()
project_settings = sa.Table(
    "project_settings",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("redaction", sa.Text),
    sa.Column("retention_days", sa.Integer),
    sa.Column("updated_ns", sa.BigInteger),
)
_POLICY_FIELDS = ("secrets", "emails", "phones", "cards")


def _policy(text: str | None) -> RedactionPolicy:
    raw: Any = orjson.loads(text) if text else {}
    if not isinstance(raw, dict):
        return RedactionPolicy()
    flags = {k: bool(raw[k]) for k in _POLICY_FIELDS if k in raw}
    patterns = tuple(str(p) for p in raw.get("custom_patterns") or ())
    return RedactionPolicy(**flags, custom_patterns=patterns)


def _policy_json(p: RedactionPolicy) -> str:
    data = {k: getattr(p, k) for k in _POLICY_FIELDS}
    return orjson.dumps({**data, "custom_patterns": list(p.custom_patterns)}).decode()


class SqlTraceSettingsStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find_settings(self, project_id: str) -> TraceSettings | None:
        q = sa.select(project_settings).where(project_settings.c.project_id == project_id)
        try:
            with self._engine.connect() as conn:
                row = conn.execute(q).first()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:  # span writes go through here: 503, not 500
            raise StorageUnavailableError(f"the settings database is unavailable: {type(exc.orig).__name__}") from exc
        if row is None:
            return None
        m = row._mapping
        return TraceSettings(m["project_id"], _policy(m["redaction"]), m["retention_days"], m["updated_ns"])

    def save_settings(self, settings: TraceSettings) -> None:
        values = {
            "redaction": _policy_json(settings.redaction),
            "retention_days": settings.retention_days,
            "updated_ns": settings.updated_ns,
        }
        table = project_settings
        with self._engine.begin() as conn:
            updated = conn.execute(table.update().where(table.c.project_id == settings.project_id).values(**values))
            if updated.rowcount == 0:
                conn.execute(table.insert().values(project_id=settings.project_id, **values))
