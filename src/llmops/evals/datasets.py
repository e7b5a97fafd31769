"""Versioned evaluation datasets: items, versions, JSONL/CSV import and export.

Every change (``add_items``, ``replace_items``) writes a new version holding the full item list; old versions
stay addressable by number and experiments pin one. Items are plain mappings with ``input`` (text, chat
messages or a variables mapping), ``expected``, ``contexts``, ``metadata`` and ``source`` (trace/span link).
Every query filters by ``project_id``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError

_meta = sa.MetaData()
dataset_table = sa.Table(
    "eval_datasets",
    _meta,
    sa.Column("dataset_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("name", sa.String),
    sa.Column("description", sa.Text),
    sa.Column("latest_version", sa.Integer),
    sa.Column("created_ns", sa.BigInteger),
)
item_table = sa.Table(
    "eval_dataset_items",
    _meta,
    sa.Column("project_id", sa.String),
    sa.Column("dataset_id", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.String),
    sa.Column("body", sa.Text),
)

_ITEM_KEYS = {"id", "input", "expected", "contexts", "metadata", "source"}
# Accepted spellings of other producers (review corrections: ``expected_output``, ``source_trace_id``).
_ALIASES = {"expected_output": "expected", "source_trace_id": "source"}


@dataclass(frozen=True)
class DatasetItem:
    id: str
    input: Any
    expected: str | None = None
    contexts: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] | None = None  # {"trace_id": ..., "span_id": ...}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input": self.input,
            "expected": self.expected,
            "contexts": list(self.contexts),
            "metadata": dict(self.metadata),
            "source": dict(self.source) if self.source else None,
        }


@dataclass(frozen=True)
class DatasetVersion:
    dataset_id: str
    name: str
    version: int
    items: list[DatasetItem]


def normalize_item(raw: Any, where: str = "item") -> DatasetItem:
    """Validate one item mapping; raises :class:`InvalidInputError` naming ``where`` (e.g. ``line 3``)."""
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"{where}: an item must be an object", param="items")
    if set(raw) & set(_ALIASES):
        raw = _unalias(raw, where)
    unknown = set(raw) - _ITEM_KEYS
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {sorted(unknown)}", param="items")
    if raw.get("input") is None:
        raise InvalidInputError(f"{where}: 'input' is required", param="items")
    expected = raw.get("expected")
    if expected is not None and not isinstance(expected, str):
        expected = orjson.dumps(expected).decode()
    contexts = raw.get("contexts") or []
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise InvalidInputError(f"{where}: 'contexts' must be a list of strings", param="items")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"{where}: 'metadata' must be an object", param="items")
    source = raw.get("source")
    if source is not None and not isinstance(source, Mapping):
        raise InvalidInputError(f"{where}: 'source' must be an object", param="items")
    return DatasetItem(
        id=str(raw.get("id") or uuid.uuid4().hex[:16]),
        input=raw["input"],
        expected=expected,
        contexts=tuple(contexts),
        metadata=dict(metadata),
        source=dict(source) if source else None,
    )


def _unalias(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = dict(raw)
    for alias, key in _ALIASES.items():
        if alias not in out:
            continue
        if key in out:
            raise InvalidInputError(f"{where}: give {key!r} or {alias!r}, not both", param="items")
        value = out.pop(alias)
        out[key] = {"trace_id": value} if alias == "source_trace_id" and value is not None else value
    return out


# --- items from traces ---------------------------------------------------------------------------------------------
def _text_of_parts(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return "" if parts is None else str(parts)
    return "".join(str(p.get("content") or "") for p in parts if isinstance(p, Mapping) and p.get("type") == "text")


def chat_messages(value: Any) -> Any:
    """Span messages (the semantic conventions' ``parts`` form) as OpenAI chat messages; other values as is."""
    if not isinstance(value, list) or not all(isinstance(m, Mapping) and "role" in m for m in value):
        return value
    out = []
    for m in value:
        content = m["content"] if "content" in m else _text_of_parts(m.get("parts"))
        out.append({"role": m["role"], "content": content})
    return out


def output_text(value: Any) -> str | None:
    """The text of a span output: the first assistant message's text, or the value itself."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        first = value[0]
        return str(first["content"]) if "content" in first else _text_of_parts(first.get("parts"))
    return orjson.dumps(value).decode()


def item_from_spans(spans: Sequence[Any], span_id: str | None = None) -> dict[str, Any]:
    """A dataset item from one trace's spans: the span ``span_id`` (or the trace's first span that has an input,
    preferring LLM spans); ``input`` = its input messages, ``expected`` = its output, ``source`` = the link."""
    if span_id is not None:
        span = next((s for s in spans if s.span_id == span_id), None)
        if span is None:
            raise NotFoundError(f"span {span_id!r} not found in its trace", param="span_id")
    else:
        ordered = sorted(spans, key=lambda s: (s.kind != "llm", s.start_ns))
        span = next((s for s in ordered if s.input is not None), None)
        if span is None:
            raise InvalidInputError(
                f"trace {spans[0].trace_id if spans else '?'!r} has no span with captured input", param="trace_id"
            )
    if span.input is None:
        raise InvalidInputError(f"span {span.span_id!r} has no captured input", param="span_id")
    meta = {k: v for k, v in (("model", span.request_model), ("span_name", span.name)) if v}
    return {
        "input": chat_messages(span.input),
        "expected": output_text(span.output),
        "metadata": meta,
        "source": {"trace_id": span.trace_id, "span_id": span.span_id},
    }


def parse_jsonl(text: str) -> list[DatasetItem]:
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise InvalidInputError(f"line {n}: invalid JSON ({e})", param="file") from None
        items.append(normalize_item(raw, f"line {n}"))
    return items


def parse_csv(text: str) -> list[DatasetItem]:
    """Columns: ``input`` (required), ``expected``, ``id``; other columns go to ``metadata``."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "input" not in reader.fieldnames:
        raise InvalidInputError("line 1: CSV header must contain an 'input' column", param="file")
    items = []
    for row in reader:
        n = reader.line_num
        if None in row:
            raise InvalidInputError(f"line {n}: more fields than the header", param="file")
        raw: dict[str, Any] = {"input": row.pop("input") or None, "metadata": {}}
        for key in ("expected", "id"):
            if row.get(key):
                raw[key] = row.pop(key)
            row.pop(key, None)
        raw["metadata"] = {k: v for k, v in row.items() if v not in (None, "")}
        items.append(normalize_item(raw, f"line {n}"))
    return items


def to_jsonl(items: Iterable[DatasetItem]) -> str:
    return "".join(orjson.dumps(i.to_dict()).decode() + "\n" for i in items)


def to_csv(items: Iterable[DatasetItem]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "input", "expected"])
    for i in items:
        inp = i.input if isinstance(i.input, str) else orjson.dumps(i.input).decode()
        w.writerow([i.id, inp, i.expected or ""])
    return out.getvalue()


class DatasetService:
    """Datasets of one database. All methods are coroutines; SQL runs in a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # writes ----------------------------------------------------------------------------------------------
    async def create(self, project_id: str, name: str, description: str = "") -> DatasetVersion:
        return await asyncio.to_thread(self._create, project_id, name, description)

    async def create_new(
        self, project_id: str, name: str, description: str = "", items: list[dict[str, Any]] | None = None
    ) -> DatasetVersion:
        """Create ``name`` (:class:`ConflictError` when it exists), with ``items`` as version 1 when given."""
        parsed = [normalize_item(raw, f"item {n}") for n, raw in enumerate(items or [], 1)]

        def run() -> DatasetVersion:
            with self._engine.connect() as c:
                exists = c.execute(
                    sa.select(dataset_table.c.dataset_id).where(
                        dataset_table.c.project_id == project_id, dataset_table.c.name == name
                    )
                ).first()
            if exists is not None:
                raise ConflictError(f"dataset {name!r} already exists", param="name")
            created = self._create(project_id, name, description)
            return self._write(project_id, name, parsed, True) if parsed else created

        return await asyncio.to_thread(run)

    async def versions(self, project_id: str, dataset: str) -> list[dict[str, int]]:
        """Every version of ``dataset`` with its item count, newest first."""

        def run() -> list[dict[str, int]]:
            ds = self._get(project_id, dataset, 0)
            with self._engine.connect() as c:
                rows = c.execute(
                    sa.select(item_table.c.version, sa.func.count().label("n"))
                    .where(item_table.c.project_id == project_id, item_table.c.dataset_id == ds.dataset_id)
                    .group_by(item_table.c.version)
                ).all()
                latest = c.execute(
                    sa.select(dataset_table.c.latest_version).where(dataset_table.c.dataset_id == ds.dataset_id)
                ).scalar_one()
            counts = {r.version: int(r.n) for r in rows}
            return [{"version": v, "items": counts.get(v, 0)} for v in range(latest, 0, -1)]

        return await asyncio.to_thread(run)

    async def add_items(self, project_id: str, dataset: str, items: list[dict[str, Any]]) -> DatasetVersion:
        """Append items to ``dataset`` (created when missing) as a new version; returns that version."""
        parsed = [normalize_item(raw, f"item {n}") for n, raw in enumerate(items, 1)]
        return await asyncio.to_thread(self._write, project_id, dataset, parsed, True)

    async def replace_items(self, project_id: str, dataset: str, items: list[DatasetItem]) -> DatasetVersion:
        """A new version holding exactly ``items`` (edits, deletions)."""
        return await asyncio.to_thread(self._write, project_id, dataset, list(items), False)

    async def import_text(self, project_id: str, dataset: str, text: str, fmt: str = "jsonl") -> DatasetVersion:
        parsed = parse_csv(text) if fmt == "csv" else parse_jsonl(text)
        return await asyncio.to_thread(self._write, project_id, dataset, parsed, True)

    async def sync_text(self, project_id: str, dataset: str, text: str, fmt: str = "jsonl") -> DatasetVersion:
        """Make the latest version hold exactly the file's items (a new version only when they changed)."""
        parsed = parse_csv(text) if fmt == "csv" else parse_jsonl(text)
        try:
            cur = await self.get(project_id, dataset)
        except NotFoundError:
            cur = None
        if cur is not None and [i.to_dict() for i in cur.items] == [i.to_dict() for i in parsed]:
            return cur
        return await self.replace_items(project_id, dataset, parsed)

    # reads -----------------------------------------------------------------------------------------------
    async def get(self, project_id: str, dataset: str, version: int | None = None) -> DatasetVersion:
        return await asyncio.to_thread(self._get, project_id, dataset, version)

    async def list_datasets(self, project_id: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            with self._engine.connect() as c:
                rows = c.execute(
                    sa.select(dataset_table)
                    .where(dataset_table.c.project_id == project_id)
                    .order_by(dataset_table.c.name)
                ).all()
            return [
                {"id": r.dataset_id, "name": r.name, "description": r.description, "version": r.latest_version}
                for r in rows
            ]

        return await asyncio.to_thread(run)

    async def export_text(self, project_id: str, dataset: str, version: int | None = None, fmt: str = "jsonl") -> str:
        ds = await self.get(project_id, dataset, version)
        return to_csv(ds.items) if fmt == "csv" else to_jsonl(ds.items)

    # sync internals --------------------------------------------------------------------------------------
    def _create(self, project_id: str, name: str, description: str) -> DatasetVersion:
        if not name or len(name) > 200:
            raise InvalidInputError("dataset name must be 1-200 characters", param="name")
        with self._engine.begin() as c:
            row = c.execute(
                sa.select(dataset_table).where(dataset_table.c.project_id == project_id, dataset_table.c.name == name)
            ).first()
            if row is None:
                c.execute(
                    dataset_table.insert().values(
                        dataset_id=uuid.uuid4().hex,
                        project_id=project_id,
                        name=name,
                        description=description,
                        latest_version=0,
                        created_ns=time.time_ns(),
                    )
                )
        return self._get(project_id, name, None)

    def _write(self, project_id: str, name: str, items: list[DatasetItem], append: bool) -> DatasetVersion:
        self._create(project_id, name, "")
        with self._engine.begin() as c:
            row = c.execute(
                sa.select(dataset_table).where(dataset_table.c.project_id == project_id, dataset_table.c.name == name)
            ).one()
            old = self._items(c, project_id, row.dataset_id, row.latest_version) if append else []
            new_version = row.latest_version + 1
            upd = c.execute(
                dataset_table.update()
                .where(
                    dataset_table.c.dataset_id == row.dataset_id,
                    dataset_table.c.latest_version == row.latest_version,
                )
                .values(latest_version=new_version)
            )
            if upd.rowcount != 1:
                raise ConflictError("dataset changed concurrently; retry", param="dataset")
            all_items = old + items
            seen: set[str] = set()
            for it in all_items:
                if it.id in seen:
                    raise InvalidInputError(f"duplicate item id {it.id!r}", param="items")
                seen.add(it.id)
            if all_items:
                c.execute(
                    item_table.insert(),
                    [
                        {
                            "project_id": project_id,
                            "dataset_id": row.dataset_id,
                            "version": new_version,
                            "position": pos,
                            "item_id": it.id,
                            "body": orjson.dumps(it.to_dict()).decode(),
                        }
                        for pos, it in enumerate(all_items)
                    ],
                )
        return DatasetVersion(row.dataset_id, name, new_version, all_items)

    def _items(self, c: sa.Connection, project_id: str, dataset_id: str, version: int) -> list[DatasetItem]:
        rows = c.execute(
            sa.select(item_table.c.body)
            .where(
                item_table.c.project_id == project_id,
                item_table.c.dataset_id == dataset_id,
                item_table.c.version == version,
            )
            .order_by(item_table.c.position)
        ).all()
        return [normalize_item(orjson.loads(r.body)) for r in rows]

    def _get(self, project_id: str, name: str, version: int | None) -> DatasetVersion:
        with self._engine.connect() as c:
            row = c.execute(
                sa.select(dataset_table).where(dataset_table.c.project_id == project_id, dataset_table.c.name == name)
            ).first()
            if row is None:
                raise NotFoundError(f"dataset {name!r} not found", param="dataset")
            v = row.latest_version if version is None else version
            if v < 0 or v > row.latest_version:
                raise NotFoundError(f"dataset {name!r} has no version {v}", param="version")
            return DatasetVersion(row.dataset_id, name, v, self._items(c, project_id, row.dataset_id, v))
