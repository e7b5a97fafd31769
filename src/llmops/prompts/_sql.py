"""SQLAlchemy Core implementation of :class:`PromptStore` (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llmops.core.errors import ConflictError
from llmops.prompts.models import Label, LabelMove, LabelState, Prompt, PromptSummary, PromptVersion
from llmops.prompts.spec import parse_content

_meta = sa.MetaData()


def _state_cols(prefix: str) -> list[sa.Column[Any]]:
    return [
        sa.Column(f"{prefix}version", sa.Integer),
        sa.Column(f"{prefix}canary_version", sa.Integer),
        sa.Column(f"{prefix}canary_percent", sa.Float),
    ]


prompt_table = sa.Table(
    "prompts",
    _meta,
    sa.Column("prompt_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("name", sa.String),
    sa.Column("protected_labels", sa.Text),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("updated_ns", sa.BigInteger),
)
version_table = sa.Table(
    "prompt_versions",
    _meta,
    sa.Column("prompt_id", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("content", sa.Text),
    sa.Column("content_hash", sa.String),
    sa.Column("message", sa.Text),
    sa.Column("author", sa.String),
    sa.Column("created_ns", sa.BigInteger),
)
label_table = sa.Table(
    "prompt_labels",
    _meta,
    sa.Column("prompt_id", sa.String, primary_key=True),
    sa.Column("label", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    *_state_cols(""),
    sa.Column("updated_ns", sa.BigInteger),
    sa.Column("updated_by", sa.String),
)
move_table = sa.Table(
    "prompt_label_moves",
    _meta,
    sa.Column("move_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("prompt_id", sa.String),
    sa.Column("project_id", sa.String),
    sa.Column("label", sa.String),
    sa.Column("action", sa.String),
    *_state_cols("from_"),
    *_state_cols("to_"),
    sa.Column("actor", sa.String),
    sa.Column("moved_ns", sa.BigInteger),
)


def _state_values(prefix: str, state: LabelState | None) -> dict[str, Any]:
    return {
        f"{prefix}version": state.version if state else None,
        f"{prefix}canary_version": state.canary_version if state else None,
        f"{prefix}canary_percent": state.canary_percent if state else None,
    }


def _state(m: Any, prefix: str) -> LabelState | None:
    if m[f"{prefix}version"] is None:
        return None
    return LabelState(m[f"{prefix}version"], m[f"{prefix}canary_version"], m[f"{prefix}canary_percent"])


def _prompt(m: Any) -> Prompt:
    return Prompt(
        m["prompt_id"], m["project_id"], m["name"], m["created_ns"], tuple(orjson.loads(m["protected_labels"]))
    )


def _version(m: Any, name: str) -> PromptVersion:
    content = parse_content(orjson.loads(m["content"]), max_template_bytes=2**31)  # stored content was checked
    return PromptVersion(
        m["prompt_id"], name, m["version"], content, m["content_hash"], m["message"], m["author"], m["created_ns"]
    )


def _label(m: Any) -> Label:
    state = _state(m, "")
    assert state is not None
    return Label(m["label"], state, m["updated_ns"], m["updated_by"])


def _move(m: Any) -> LabelMove:
    after = _state(m, "to_")
    assert after is not None
    return LabelMove(m["label"], m["action"], _state(m, "from_"), after, m["actor"], m["moved_ns"])


class SqlPromptStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find_prompt(self, project_id: str, name: str) -> Prompt | None:
        q = sa.select(prompt_table).where(prompt_table.c.project_id == project_id, prompt_table.c.name == name)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _prompt(row._mapping) if row else None

    def list_prompts(self, project_id: str) -> list[PromptSummary]:
        latest = (
            sa.select(version_table.c.prompt_id, sa.func.max(version_table.c.version).label("version"))
            .where(version_table.c.project_id == project_id)
            .group_by(version_table.c.prompt_id)
            .subquery()
        )
        q = (
            sa.select(
                prompt_table.c.name,
                prompt_table.c.prompt_id,
                prompt_table.c.updated_ns,
                version_table.c.version,
                version_table.c.content,
            )
            .join(latest, latest.c.prompt_id == prompt_table.c.prompt_id)
            .join(
                version_table,
                sa.and_(version_table.c.prompt_id == latest.c.prompt_id, version_table.c.version == latest.c.version),
            )
            .where(prompt_table.c.project_id == project_id)
            .order_by(prompt_table.c.name)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
            label_rows = conn.execute(sa.select(label_table).where(label_table.c.project_id == project_id)).all()
        by_prompt: dict[str, dict[str, LabelState]] = {}
        for r in label_rows:
            by_prompt.setdefault(r.prompt_id, {})[r.label] = _label(r._mapping).state
        return [_summary(r._mapping, by_prompt.get(r.prompt_id, {})) for r in rows]

    def insert_prompt(self, prompt: Prompt, first: PromptVersion, latest: Label, move: LabelMove) -> None:
        row = {**prompt.__dict__, "protected_labels": orjson.dumps(list(prompt.protected_labels)).decode()}
        try:
            with self._engine.begin() as conn:
                conn.execute(prompt_table.insert().values(**row, updated_ns=prompt.created_ns))
                self._write_version(conn, prompt.project_id, first, latest, move)
        except IntegrityError as exc:
            raise ConflictError(f"prompt {prompt.name!r} already exists", param="name", code="prompt_exists") from exc

    def insert_version(self, project_id: str, version: PromptVersion, latest: Label, move: LabelMove) -> None:
        try:
            with self._engine.begin() as conn:
                self._write_version(conn, project_id, version, latest, move)
        except IntegrityError as exc:
            raise ConflictError(
                f"prompt {version.name!r} version {version.version} was just created by another push",
                param="version",
                code="version_conflict",
            ) from exc

    def _write_version(
        self, conn: sa.Connection, project_id: str, v: PromptVersion, latest: Label, move: LabelMove
    ) -> None:
        conn.execute(
            version_table.insert().values(
                prompt_id=v.prompt_id,
                version=v.version,
                project_id=project_id,
                content=orjson.dumps(v.content.to_dict()).decode(),
                content_hash=v.content_hash,
                message=v.message,
                author=v.author,
                created_ns=v.created_ns,
            )
        )
        self._write_label(conn, project_id, v.prompt_id, latest, move)

    def _write_label(self, conn: sa.Connection, project_id: str, prompt_id: str, label: Label, move: LabelMove) -> None:
        values = {**_state_values("", label.state), "updated_ns": label.updated_ns, "updated_by": label.updated_by}
        where = sa.and_(
            label_table.c.project_id == project_id,
            label_table.c.prompt_id == prompt_id,
            label_table.c.label == label.label,
        )
        if conn.execute(label_table.update().where(where).values(**values)).rowcount == 0:
            conn.execute(
                label_table.insert().values(prompt_id=prompt_id, label=label.label, project_id=project_id, **values)
            )
        conn.execute(
            move_table.insert().values(
                prompt_id=prompt_id,
                project_id=project_id,
                label=move.label,
                action=move.action,
                **_state_values("from_", move.before),
                **_state_values("to_", move.after),
                actor=move.actor,
                moved_ns=move.moved_ns,
            )
        )
        conn.execute(
            prompt_table.update()
            .where(prompt_table.c.project_id == project_id, prompt_table.c.prompt_id == prompt_id)
            .values(updated_ns=move.moved_ns)
        )

    def _versions_query(self, project_id: str, prompt_id: str) -> sa.Select[Any]:
        return (
            sa.select(version_table, prompt_table.c.name)
            .join(prompt_table, prompt_table.c.prompt_id == version_table.c.prompt_id)
            .where(version_table.c.project_id == project_id, version_table.c.prompt_id == prompt_id)
        )

    def find_version(self, project_id: str, prompt_id: str, version: int) -> PromptVersion | None:
        q = self._versions_query(project_id, prompt_id).where(version_table.c.version == version)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _version(row._mapping, row.name) if row else None

    def find_latest_version(self, project_id: str, prompt_id: str) -> PromptVersion | None:
        q = self._versions_query(project_id, prompt_id).order_by(version_table.c.version.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _version(row._mapping, row.name) if row else None

    def list_versions(self, project_id: str, prompt_id: str) -> list[PromptVersion]:
        q = self._versions_query(project_id, prompt_id).order_by(version_table.c.version.desc())
        with self._engine.connect() as conn:
            return [_version(r._mapping, r.name) for r in conn.execute(q)]

    def list_labels(self, project_id: str, prompt_id: str) -> list[Label]:
        q = (
            sa.select(label_table)
            .where(label_table.c.project_id == project_id, label_table.c.prompt_id == prompt_id)
            .order_by(label_table.c.label)
        )
        with self._engine.connect() as conn:
            return [_label(r._mapping) for r in conn.execute(q)]

    def save_label(self, project_id: str, prompt_id: str, label: Label, move: LabelMove) -> None:
        try:
            with self._engine.begin() as conn:
                self._write_label(conn, project_id, prompt_id, label, move)
        except IntegrityError as exc:
            raise ConflictError(
                f"label {label.label!r} was changed concurrently; try again", param="label", code="label_conflict"
            ) from exc

    def list_moves(self, project_id: str, prompt_id: str, *, label: str | None = None) -> list[LabelMove]:
        q = sa.select(move_table).where(move_table.c.project_id == project_id, move_table.c.prompt_id == prompt_id)
        if label is not None:
            q = q.where(move_table.c.label == label)
        with self._engine.connect() as conn:
            return [_move(r._mapping) for r in conn.execute(q.order_by(move_table.c.move_id))]

    def update_protected_labels(
        self, project_id: str, prompt_id: str, labels: tuple[str, ...], updated_ns: int
    ) -> None:
        q = prompt_table.update().where(prompt_table.c.project_id == project_id, prompt_table.c.prompt_id == prompt_id)
        with self._engine.begin() as conn:
            conn.execute(q.values(protected_labels=orjson.dumps(list(labels)).decode(), updated_ns=updated_ns))


def _summary(m: Any, states: dict[str, LabelState]) -> PromptSummary:
    content = orjson.loads(m["content"])
    return PromptSummary(
        name=m["name"],
        type=content["type"],
        latest_version=m["version"],
        labels=states,
        tags=tuple(content.get("tags") or ()),
        description=content.get("description"),
        updated_ns=m["updated_ns"],
    )
