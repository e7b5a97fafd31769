"""SQLAlchemy Core implementation of :class:`ProjectStore` (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llmops.core.errors import ConflictError
from llmops.projects.models import ApiKey, Project

_meta = sa.MetaData()
projects = sa.Table(
    "projects",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("name", sa.String),
    sa.Column("created_ns", sa.BigInteger),
)
api_keys = sa.Table(
    "api_keys",
    _meta,
    sa.Column("key_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("name", sa.String),
    sa.Column("key_hash", sa.String),
    sa.Column("display_prefix", sa.String),
    sa.Column("is_admin", sa.Boolean),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("revoked_ns", sa.BigInteger),
)
_KEY_COLS = [c for c in api_keys.c if c.name != "key_hash"]


def _key(row: sa.Row) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(**{c.name: row._mapping[c.name] for c in _KEY_COLS})


class SqlProjectStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count_projects(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(projects)).scalar_one())

    def insert_project(self, project: Project) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(projects.insert().values(**project.__dict__))
        except IntegrityError as exc:
            raise ConflictError(f"project {project.name!r} already exists", param="name") from exc

    def find_project_by_name(self, name: str) -> Project | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).first()
        return Project(**row._mapping) if row else None

    def list_projects(self) -> list[Project]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.created_ns)).all()
        return [Project(**r._mapping) for r in rows]

    def insert_key(self, key: ApiKey, key_hash: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(api_keys.insert().values(**key.__dict__, key_hash=key_hash))

    def find_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(*_KEY_COLS).where(api_keys.c.key_hash == key_hash)).first()
        return _key(row) if row else None

    def list_keys(self, project_id: str | None) -> list[ApiKey]:
        q = sa.select(*_KEY_COLS).order_by(api_keys.c.created_ns)
        if project_id is not None:
            q = q.where(api_keys.c.project_id == project_id)
        with self._engine.connect() as conn:
            return [_key(r) for r in conn.execute(q).all()]

    def revoke_key(self, key_id: str, revoked_ns: int, *, project_id: str | None) -> bool:
        q = api_keys.update().where(api_keys.c.key_id == key_id, api_keys.c.revoked_ns.is_(None))
        if project_id is not None:
            q = q.where(api_keys.c.project_id == project_id)
        with self._engine.begin() as conn:
            return conn.execute(q.values(revoked_ns=revoked_ns)).rowcount > 0
