"""SQLAlchemy Core implementation of :class:`RagStore` (and :class:`CorpusReader`), SQLite and PostgreSQL.

Keyword search: SQLite FTS5 (porter stemmer, bm25) / PostgreSQL ``tsvector`` ('english', ts_rank); query terms
are OR-ed (retrieval wants any matching word, ranked), unlike the trace search which requires all of them.
Embeddings are stored as raw float32 bytes (384 x 4 = 1536 bytes per chunk).

pgvector: on PostgreSQL where migration 0012 could create the ``vector`` extension, ``rag_chunks`` also has
``embedding_vec vector(384)`` with an HNSW index (``vector_cosine_ops``). The store then writes the vector
there too and :meth:`SqlRagStore.vector_search` answers with ``ORDER BY embedding_vec <=> :q LIMIT n``,
filtered by project, collection and metadata in SQL (pgvector >= 0.8 scans the graph iteratively until
enough rows pass the filter). Elsewhere ``native_vectors`` is False and the service keeps its in-process index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import UserDefinedType

from llmops.core.errors import ConflictError, NotFoundError
from llmops.rag.models import EMBEDDING_DIM, Chunk, Collection, Document, DocumentVersion, IndexVersion
from llmops.rag.store import IngestWrite

_meta = sa.MetaData()
_TOKEN = re.compile(r"\w+", re.UNICODE)
_IN_BATCH = 500

collections_t = sa.Table(
    "rag_collections",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("collection", sa.String, primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("chunk_size", sa.Integer),
    sa.Column("chunk_overlap", sa.Integer),
    sa.Column("embedder", sa.String),
    sa.Column("index_version", sa.Integer),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("updated_ns", sa.BigInteger),
)
documents_t = sa.Table(
    "rag_documents",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("collection", sa.String, primary_key=True),
    sa.Column("document_id", sa.String, primary_key=True),
    sa.Column("source", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("version", sa.Integer),
    sa.Column("content_hash", sa.String),
    sa.Column("metadata", sa.Text),
    sa.Column("effective_ns", sa.BigInteger),
    sa.Column("retrieval_count", sa.Integer),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("updated_ns", sa.BigInteger),
    sa.Column("deleted_ns", sa.BigInteger),
)
versions_t = sa.Table(
    "rag_document_versions",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("collection", sa.String, primary_key=True),
    sa.Column("document_id", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("source", sa.Text),
    sa.Column("title", sa.Text),
    sa.Column("content_hash", sa.String),
    sa.Column("text", sa.Text),
    sa.Column("metadata", sa.Text),
    sa.Column("effective_ns", sa.BigInteger),
    sa.Column("index_version", sa.Integer),
    sa.Column("deleted", sa.Boolean),
    sa.Column("created_ns", sa.BigInteger),
)
chunks_t = sa.Table(
    "rag_chunks",
    _meta,
    sa.Column("chunk_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String),
    sa.Column("collection", sa.String),
    sa.Column("document_id", sa.String),
    sa.Column("document_version", sa.Integer),
    sa.Column("position", sa.Integer),
    sa.Column("text", sa.Text),
    sa.Column("heading", sa.Text),
    sa.Column("page", sa.Integer),
    sa.Column("start_offset", sa.Integer),
    sa.Column("end_offset", sa.Integer),
    sa.Column("content_hash", sa.String),
    sa.Column("embedding", sa.LargeBinary),
)
index_versions_t = sa.Table(
    "rag_index_versions",
    _meta,
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("collection", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    *(
        sa.Column(name, sa.Integer)
        for name in ("documents", "chunks", "added", "updated", "removed", "unchanged", "embedded", "reused")
    ),
    sa.Column("chunk_size", sa.Integer),
    sa.Column("chunk_overlap", sa.Integer),
    sa.Column("embedder", sa.String),
    sa.Column("created_ns", sa.BigInteger),
)
search_t = sa.Table(
    "rag_chunk_search",
    _meta,
    sa.Column("chunk_id", sa.String),
    sa.Column("project_id", sa.String),
    sa.Column("collection", sa.String),
    sa.Column("body", sa.Text),
)
_CHUNK_COLS = [c for c in chunks_t.c if c.name != "embedding"]


class _Vector(UserDefinedType[np.ndarray]):
    """pgvector's ``vector(384)``, bound as its text form ``[x,y,...]`` (float32 values round-trip exactly)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return f"vector({EMBEDDING_DIM})"

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.cast(bindvalue, self)

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: Any) -> str | None:
            if value is None:
                return None
            return "[" + ",".join(map(str, np.asarray(value, dtype=np.float32).tolist())) + "]"

        return process


# rag_chunks with its pgvector column (only where migration 0012 added it): used for inserts and vector search
chunks_vec_t = sa.Table(
    "rag_chunks",
    sa.MetaData(),
    *(sa.Column(col.name, col.type, primary_key=col.primary_key) for col in chunks_t.c),
    sa.Column("embedding_vec", _Vector()),
)
_ITERATIVE_SCAN = (0, 8, 0)  # pgvector version that added hnsw.iterative_scan
_MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_SET_EF = sa.text("SELECT set_config('hnsw.ef_search', :ef, true)")
# strict_order: keep scanning the graph until LIMIT rows pass the WHERE (project, collection, metadata)
_SET_EF_AND_SCAN = sa.text(
    "SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', 'strict_order', true)"
)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _metadata_filter(filters: dict[str, Any]) -> list[Any]:
    """SQL twin of ``store.metadata_matches`` on ``rag_documents`` (``source`` is the document's own source)."""
    d = documents_t.c
    meta = sa.cast(d.metadata, JSONB)
    conds: list[Any] = []
    for key, want in filters.items():
        wants = want if isinstance(want, list) else [want]
        if key == "source":
            conds.append(d.source.in_([w for w in wants if isinstance(w, str)]))
            continue
        field = meta.op("->", return_type=JSONB)(key)  # not meta[key]: jsonb subscripts need PostgreSQL 14
        alts: list[Any] = []
        if any(w is None for w in wants):
            alts += [field.is_(None), field == sa.literal_column("'null'::jsonb")]
        values: list[Any] = []
        for w in (w for w in wants if w is not None):
            values.append(w)
            if isinstance(w, bool) or (type(w) is int and w in (0, 1)):
                values.append(int(w) if isinstance(w, bool) else bool(w))  # Python: True == 1
        alts += [field == sa.literal(v, JSONB) for v in values]
        conds.append(sa.or_(*alts) if alts else sa.false())
    return conds


def to_dt(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC)


def to_ns(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1e9)


def _document(m: Any) -> Document:
    return Document(
        document_id=m["document_id"],
        collection=m["collection"],
        source=m["source"],
        title=m["title"],
        version=m["version"],
        content_hash=m["content_hash"],
        metadata=orjson.loads(m["metadata"]),
        effective_date=to_dt(m["effective_ns"]),
        created_at=to_dt(m["created_ns"]) or datetime.now(UTC),
        updated_at=to_dt(m["updated_ns"]) or datetime.now(UTC),
    )


def _chunk(m: Any) -> Chunk:
    return Chunk(
        chunk_id=m["chunk_id"],
        document_id=m["document_id"],
        document_version=m["document_version"],
        position=m["position"],
        text=m["text"],
        heading=m["heading"],
        page=m["page"],
        start=m["start_offset"],
        end=m["end_offset"],
        content_hash=m["content_hash"],
    )


def _collection(m: Any, documents: int, chunks: int) -> Collection:
    return Collection(
        collection=m["collection"],
        description=m["description"],
        chunk_size=m["chunk_size"],
        chunk_overlap=m["chunk_overlap"],
        embedder=m["embedder"],
        index_version=m["index_version"],
        documents=documents,
        chunks=chunks,
        created_at=to_dt(m["created_ns"]),
        updated_at=to_dt(m["updated_ns"]),
    )


def _vec(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32)


def _live(project_id: str, collection: str) -> list[Any]:
    d = documents_t.c
    return [d.project_id == project_id, d.collection == collection, d.deleted_ns.is_(None)]


def vector_query(
    project_id: str, collection: str, vector: np.ndarray, *, limit: int, filters: dict[str, Any] | None = None
) -> sa.Select[Any]:
    """``SELECT chunk_id, embedding_vec <=> :q ... ORDER BY`` that distance: the shape pgvector's HNSW index serves."""
    c = chunks_vec_t.c
    distance = c.embedding_vec.op("<=>", return_type=sa.Float)(sa.bindparam("q", vector, type_=_Vector()))
    q = sa.select(c.chunk_id, distance).where(c.project_id == project_id, c.collection == collection)
    if filters:
        d = documents_t.c
        q = q.join(
            documents_t,
            sa.and_(d.project_id == c.project_id, d.collection == c.collection, d.document_id == c.document_id),
        ).where(*_metadata_filter(filters))
    return q.order_by(distance).limit(limit)


class SqlRagStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._pgvector: tuple[int, ...] | None = None  # pgvector version once detected; () = not available

    # --- pgvector ------------------------------------------------------------------------------------

    @property
    def native_vectors(self) -> bool:
        """True on PostgreSQL whose ``rag_chunks`` has the pgvector column (migration 0012): search in SQL."""
        if self._pgvector is None:
            self._pgvector = () if self._sqlite else self._detect_pgvector()
        return bool(self._pgvector)

    def _detect_pgvector(self) -> tuple[int, ...]:
        with self._engine.connect() as conn:
            has_column = conn.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = 'rag_chunks' AND column_name = 'embedding_vec'"
                )
            ).first()
            version = conn.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        return _version(str(version)) if has_column and version else ()

    def vector_search(
        self,
        project_id: str,
        collection: str,
        vector: np.ndarray,
        *,
        limit: int,
        ef_search: int = 192,
        filters: dict[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) best first, by pgvector's HNSW index (only when ``native_vectors``)."""
        if not self.native_vectors:
            raise RuntimeError("vector_search needs PostgreSQL with pgvector (native_vectors is False)")
        q = vector_query(project_id, collection, vector, limit=limit, filters=filters)
        with self._engine.begin() as conn:  # SET LOCAL-style settings live until the end of this transaction
            ef = str(min(max(ef_search, limit), _MAX_EF_SEARCH))  # pgvector returns at most ef_search rows
            if self._pgvector is not None and self._pgvector >= _ITERATIVE_SCAN:
                conn.execute(_SET_EF_AND_SCAN, {"ef": ef})
            else:
                conn.execute(_SET_EF, {"ef": ef})
            rows = conn.execute(q).all()
        return [(r[0], 1.0 - float(r[1])) for r in rows]

    # --- collections ---------------------------------------------------------------------------------

    def insert_collection(self, project_id: str, collection: Collection, created_ns: int) -> None:
        row = {
            "project_id": project_id,
            "collection": collection.collection,
            "description": collection.description,
            "chunk_size": collection.chunk_size,
            "chunk_overlap": collection.chunk_overlap,
            "embedder": collection.embedder,
            "index_version": 0,
            "created_ns": created_ns,
            "updated_ns": created_ns,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(collections_t.insert().values(**row))
        except IntegrityError as exc:
            raise ConflictError(f"collection {collection.collection!r} already exists", param="name") from exc

    def _counts(self, conn: Connection, project_id: str) -> tuple[dict[str, int], dict[str, int]]:
        d, c = documents_t.c, chunks_t.c
        docs = conn.execute(
            sa.select(d.collection, sa.func.count())
            .where(d.project_id == project_id, d.deleted_ns.is_(None))
            .group_by(d.collection)
        ).all()
        chunks = conn.execute(
            sa.select(c.collection, sa.func.count()).where(c.project_id == project_id).group_by(c.collection)
        ).all()
        return {r[0]: r[1] for r in docs}, {r[0]: r[1] for r in chunks}

    def all_collections(self) -> list[tuple[str, str]]:
        """(project_id, collection) of every collection (start-up index warm-up only; not tenant-facing)."""
        c = collections_t.c
        with self._engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(sa.select(c.project_id, c.collection))]

    def find_collection(self, project_id: str, collection: str) -> Collection | None:
        c = collections_t.c
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(collections_t).where(c.project_id == project_id, c.collection == collection)
            ).first()
            if row is None:
                return None
            docs, chunks = self._counts(conn, project_id)
        return _collection(row._mapping, docs.get(collection, 0), chunks.get(collection, 0))

    def list_collections(self, project_id: str) -> list[Collection]:
        c = collections_t.c
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(collections_t).where(c.project_id == project_id).order_by(c.collection)).all()
            docs, chunks = self._counts(conn, project_id)
        return [_collection(r._mapping, docs.get(r.collection, 0), chunks.get(r.collection, 0)) for r in rows]

    def delete_collection(self, project_id: str, collection: str) -> None:
        with self._engine.begin() as conn:
            for table in (search_t, chunks_t, index_versions_t, versions_t, documents_t, collections_t):
                conn.execute(table.delete().where(table.c.project_id == project_id, table.c.collection == collection))

    # --- documents -----------------------------------------------------------------------------------

    def list_documents(self, project_id: str, collection: str) -> list[Document]:
        q = sa.select(documents_t).where(*_live(project_id, collection)).order_by(documents_t.c.document_id)
        with self._engine.connect() as conn:
            return [_document(r._mapping) for r in conn.execute(q)]

    def find_document(self, project_id: str, collection: str, document_id: str) -> Document | None:
        q = sa.select(documents_t).where(*_live(project_id, collection), documents_t.c.document_id == document_id)
        with self._engine.connect() as conn:
            row = conn.execute(q).first()
        return _document(row._mapping) if row else None

    def list_versions(self, project_id: str, collection: str, document_id: str) -> list[DocumentVersion]:
        v = versions_t.c
        q = (
            sa.select(versions_t)
            .where(v.project_id == project_id, v.collection == collection, v.document_id == document_id)
            .order_by(v.version.desc())
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            DocumentVersion(
                document_id=m["document_id"],
                collection=m["collection"],
                version=m["version"],
                source=m["source"],
                title=m["title"],
                content_hash=m["content_hash"],
                text=m["text"],
                metadata=orjson.loads(m["metadata"]),
                effective_date=to_dt(m["effective_ns"]),
                index_version=m["index_version"],
                created_at=to_dt(m["created_ns"]) or datetime.now(UTC),
                deleted=bool(m["deleted"]),
            )
            for m in (r._mapping for r in rows)
        ]

    def retrieval_counts(self, project_id: str, collection: str) -> dict[str, int]:
        d = documents_t.c
        q = sa.select(d.document_id, d.retrieval_count).where(*_live(project_id, collection))
        with self._engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(q)}

    def add_retrievals(self, project_id: str, collection: str, counts: dict[str, int]) -> None:
        if not counts:
            return
        d = documents_t.c
        stmt = (
            documents_t.update()
            .where(d.project_id == project_id, d.collection == collection, d.document_id == sa.bindparam("doc"))
            .values(retrieval_count=d.retrieval_count + sa.bindparam("n"))
        )
        with self._engine.begin() as conn:
            conn.execute(stmt, [{"doc": k, "n": n} for k, n in counts.items()])

    # --- chunks --------------------------------------------------------------------------------------

    def list_chunks(
        self, project_id: str, collection: str, *, document_ids: Sequence[str] | None = None
    ) -> list[Chunk]:
        c = chunks_t.c
        q = sa.select(*_CHUNK_COLS).where(c.project_id == project_id, c.collection == collection)
        out: list[Chunk] = []
        with self._engine.connect() as conn:
            if document_ids is None:
                rows = conn.execute(q.order_by(c.document_id, c.position)).all()
                return [_chunk(r._mapping) for r in rows]
            ids = list(document_ids)
            for i in range(0, len(ids), _IN_BATCH):
                part = q.where(c.document_id.in_(ids[i : i + _IN_BATCH]))
                out.extend(_chunk(r._mapping) for r in conn.execute(part))
        return sorted(out, key=lambda ch: (ch.document_id, ch.position))

    def count_chunks(self, project_id: str, collection: str, *, document_ids: Sequence[str]) -> int:
        c = chunks_t.c
        ids, total = list(document_ids), 0
        with self._engine.connect() as conn:
            for i in range(0, len(ids), _IN_BATCH):
                q = sa.select(sa.func.count()).where(
                    c.project_id == project_id, c.collection == collection, c.document_id.in_(ids[i : i + _IN_BATCH])
                )
                total += int(conn.execute(q).scalar_one())
        return total

    def get_embeddings(self, project_id: str, chunk_ids: Sequence[str]) -> np.ndarray:
        ids = list(chunk_ids)
        found: dict[str, bytes] = {}
        c = chunks_t.c
        with self._engine.connect() as conn:
            for i in range(0, len(ids), _IN_BATCH):
                q = sa.select(c.chunk_id, c.embedding).where(
                    c.project_id == project_id, c.chunk_id.in_(ids[i : i + _IN_BATCH])
                )
                found.update({r[0]: r[1] for r in conn.execute(q)})
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"unknown chunk {missing[0]!r}", param="chunk_ids")
        if not ids:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([_vec(found[i]) for i in ids]).astype(np.float32, copy=False)

    def all_embeddings(self, project_id: str, collection: str) -> tuple[list[str], np.ndarray, list[str]]:
        c = chunks_t.c
        q = sa.select(c.chunk_id, c.embedding, c.document_id).where(
            c.project_id == project_id, c.collection == collection
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return [], np.zeros((0, EMBEDDING_DIM), dtype=np.float32), []
        buf = b"".join(r[1] for r in rows)
        vectors = np.frombuffer(buf, dtype=np.float32).reshape(len(rows), EMBEDDING_DIM)
        return [r[0] for r in rows], vectors, [r[2] for r in rows]

    def chunk_hashes(self, project_id: str, collection: str, document_ids: Sequence[str]) -> dict[str, Chunk]:
        return {ch.content_hash: ch for ch in self.list_chunks(project_id, collection, document_ids=document_ids)}

    def embeddings_by_hash(self, project_id: str, collection: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """content_hash -> a stored embedding with that hash in the collection (reused instead of re-embedding)."""
        c = chunks_t.c
        out: dict[str, np.ndarray] = {}
        hs = list(set(hashes))
        with self._engine.connect() as conn:
            for i in range(0, len(hs), _IN_BATCH):
                q = sa.select(c.content_hash, c.embedding).where(
                    c.project_id == project_id, c.collection == collection, c.content_hash.in_(hs[i : i + _IN_BATCH])
                )
                out.update({r[0]: _vec(r[1]) for r in conn.execute(q)})
        return out

    def get_chunks(self, project_id: str, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, Document]]:
        c, d = chunks_t.c, documents_t.c
        ids = list(chunk_ids)
        out: dict[str, tuple[Chunk, Document]] = {}
        join = chunks_t.join(
            documents_t,
            sa.and_(d.project_id == c.project_id, d.collection == c.collection, d.document_id == c.document_id),
        )
        cols = [*_CHUNK_COLS, *(col.label(f"d_{col.name}") for col in documents_t.c)]
        with self._engine.connect() as conn:
            for i in range(0, len(ids), _IN_BATCH):
                q = (
                    sa.select(*cols)
                    .select_from(join)
                    .where(c.project_id == project_id, c.chunk_id.in_(ids[i : i + _IN_BATCH]))
                )
                for r in conn.execute(q):
                    m = r._mapping
                    doc = _document({col.name: m[f"d_{col.name}"] for col in documents_t.c})
                    out[m["chunk_id"]] = (_chunk(m), doc)
        return out

    # --- ingest --------------------------------------------------------------------------------------

    def apply_ingest(self, write: IngestWrite) -> None:
        """All of it in one transaction; ConflictError (nothing written) if another ingest committed first."""
        try:
            self._apply_ingest(write)
        except IntegrityError as exc:  # the index version (or a chunk id) was taken by a concurrent ingest
            raise ConflictError(
                f"collection {write.collection!r} changed during the ingest; retry", code="concurrent_ingest"
            ) from exc

    def _apply_ingest(self, write: IngestWrite) -> None:
        p, coll = write.project_id, write.collection
        c = chunks_t.c
        iv = write.index_version
        with self._engine.begin() as conn:
            touched = [w.document.document_id for w in write.writes] + list(write.deletes)
            for i in range(0, len(touched), _IN_BATCH):
                part = touched[i : i + _IN_BATCH]
                old = sa.select(c.chunk_id).where(c.project_id == p, c.collection == coll, c.document_id.in_(part))
                conn.execute(search_t.delete().where(search_t.c.project_id == p, search_t.c.chunk_id.in_(old)))
                conn.execute(chunks_t.delete().where(c.project_id == p, c.collection == coll, c.document_id.in_(part)))
            for doc_id in write.deletes:
                self._delete_document(conn, p, coll, doc_id, iv.version, write.updated_ns)
            for w in write.writes:
                self._write_document(conn, p, coll, w.document, w.text, iv.version)
            native = self.native_vectors
            chunk_rows = [
                {
                    "chunk_id": r.chunk.chunk_id,
                    "project_id": p,
                    "collection": coll,
                    "document_id": r.chunk.document_id,
                    "document_version": r.chunk.document_version,
                    "position": r.chunk.position,
                    "text": r.chunk.text,
                    "heading": r.chunk.heading,
                    "page": r.chunk.page,
                    "start_offset": r.chunk.start,
                    "end_offset": r.chunk.end,
                    "content_hash": r.chunk.content_hash,
                    "embedding": np.asarray(r.embedding, dtype=np.float32).tobytes(),
                    **({"embedding_vec": r.embedding} if native else {}),
                }
                for w in write.writes
                for r in w.chunks
            ]
            if chunk_rows:
                conn.execute((chunks_vec_t if native else chunks_t).insert(), chunk_rows)
                texts = [
                    (r.chunk.chunk_id, f"{r.chunk.heading}\n{r.chunk.text}") for w in write.writes for r in w.chunks
                ]
                self._index_text(conn, p, coll, texts)
            conn.execute(
                index_versions_t.insert().values(
                    project_id=p,
                    collection=coll,
                    version=iv.version,
                    documents=iv.documents,
                    chunks=iv.chunks,
                    added=iv.added,
                    updated=iv.updated,
                    removed=iv.removed,
                    unchanged=iv.unchanged,
                    embedded=iv.embedded,
                    reused=iv.reused,
                    chunk_size=iv.chunk_size,
                    chunk_overlap=iv.chunk_overlap,
                    embedder=iv.embedder,
                    created_ns=write.updated_ns,
                )
            )
            cc = collections_t.c
            done = conn.execute(
                collections_t.update()
                .where(cc.project_id == p, cc.collection == coll, cc.index_version == iv.version - 1)
                .values(index_version=iv.version, updated_ns=write.updated_ns)
            )
            if done.rowcount != 1:  # another ingest committed first: roll everything back
                raise ConflictError(f"collection {coll!r} changed during the ingest; retry", code="concurrent_ingest")

    def _index_text(self, conn: Connection, project_id: str, collection: str, rows: list[tuple[str, str]]) -> None:
        if self._sqlite:
            conn.execute(
                sa.text(
                    "INSERT INTO rag_chunk_search (project_id, collection, chunk_id, body) VALUES (:p, :c, :i, :b)"
                ),
                [{"p": project_id, "c": collection, "i": i, "b": b} for i, b in rows],
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO rag_chunk_search (project_id, collection, chunk_id, body) "
                    "VALUES (:p, :c, :i, to_tsvector('english', :b))"
                ),
                [{"p": project_id, "c": collection, "i": i, "b": b} for i, b in rows],
            )

    def _delete_document(
        self, conn: Connection, project_id: str, collection: str, document_id: str, index_version: int, now_ns: int
    ) -> None:
        d = documents_t.c
        key = [d.project_id == project_id, d.collection == collection, d.document_id == document_id]
        row = conn.execute(sa.select(documents_t).where(*key, d.deleted_ns.is_(None))).first()
        if row is None:
            return
        m = row._mapping
        conn.execute(documents_t.update().where(*key).values(deleted_ns=now_ns, updated_ns=now_ns))
        conn.execute(
            versions_t.insert().values(
                project_id=project_id,
                collection=collection,
                document_id=document_id,
                version=m["version"] + 1,
                source=m["source"],
                title=m["title"],
                content_hash="",
                text="",
                metadata=m["metadata"],
                effective_ns=m["effective_ns"],
                index_version=index_version,
                deleted=True,
                created_ns=now_ns,
            )
        )
        conn.execute(documents_t.update().where(*key).values(version=m["version"] + 1))

    def _write_document(
        self, conn: Connection, project_id: str, collection: str, doc: Document, text: str, index_version: int
    ) -> None:
        d = documents_t.c
        key = [d.project_id == project_id, d.collection == collection, d.document_id == doc.document_id]
        values = {
            "source": doc.source,
            "title": doc.title,
            "version": doc.version,
            "content_hash": doc.content_hash,
            "metadata": orjson.dumps(doc.metadata).decode(),
            "effective_ns": to_ns(doc.effective_date),
            "updated_ns": to_ns(doc.updated_at),
            "deleted_ns": None,
        }
        if conn.execute(sa.select(d.document_id).where(*key)).first() is None:
            conn.execute(
                documents_t.insert().values(
                    project_id=project_id,
                    collection=collection,
                    document_id=doc.document_id,
                    retrieval_count=0,
                    created_ns=to_ns(doc.created_at),
                    **values,
                )
            )
        else:
            conn.execute(documents_t.update().where(*key).values(**values))
        conn.execute(
            versions_t.insert().values(
                project_id=project_id,
                collection=collection,
                document_id=doc.document_id,
                version=doc.version,
                source=doc.source,
                title=doc.title,
                content_hash=doc.content_hash,
                text=text,
                metadata=values["metadata"],
                effective_ns=values["effective_ns"],
                index_version=index_version,
                deleted=False,
                created_ns=to_ns(doc.updated_at),
            )
        )

    def find_version_number(self, project_id: str, collection: str, document_id: str) -> int:
        """The highest version number in the history (live or deleted), 0 if none."""
        v = versions_t.c
        q = sa.select(sa.func.max(v.version)).where(
            v.project_id == project_id, v.collection == collection, v.document_id == document_id
        )
        with self._engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def list_index_versions(self, project_id: str, collection: str) -> list[IndexVersion]:
        t = index_versions_t.c
        q = (
            sa.select(index_versions_t)
            .where(t.project_id == project_id, t.collection == collection)
            .order_by(t.version.desc())
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            IndexVersion(
                collection=m["collection"],
                version=m["version"],
                documents=m["documents"],
                chunks=m["chunks"],
                added=m["added"],
                updated=m["updated"],
                removed=m["removed"],
                unchanged=m["unchanged"],
                embedded=m["embedded"],
                reused=m["reused"],
                chunk_size=m["chunk_size"],
                chunk_overlap=m["chunk_overlap"],
                embedder=m["embedder"],
                created_at=to_dt(m["created_ns"]) or datetime.now(UTC),
            )
            for m in (r._mapping for r in rows)
        ]

    # --- keyword search ------------------------------------------------------------------------------

    def keyword_search(self, project_id: str, collection: str, query: str, *, limit: int) -> list[tuple[str, float]]:
        tokens = list(dict.fromkeys(t.lower() for t in _TOKEN.findall(query)))[:64]
        if not tokens:
            return []
        with self._engine.connect() as conn:
            if self._sqlite:
                rows = conn.execute(
                    sa.text(
                        "SELECT chunk_id, bm25(rag_chunk_search) AS s FROM rag_chunk_search "
                        "WHERE rag_chunk_search MATCH :q AND project_id = :p AND collection = :c "
                        "ORDER BY s LIMIT :n"
                    ),
                    {"q": " OR ".join(f'"{t}"' for t in tokens), "p": project_id, "c": collection, "n": limit},
                ).all()
                return [(r[0], -float(r[1])) for r in rows]
            rows = conn.execute(
                sa.text(
                    "SELECT chunk_id, ts_rank(body, q) AS s FROM rag_chunk_search, to_tsquery('english', :q) q "
                    "WHERE body @@ q AND project_id = :p AND collection = :c ORDER BY s DESC LIMIT :n"
                ),
                {"q": " | ".join(tokens), "p": project_id, "c": collection, "n": limit},
            ).all()
            return [(r[0], float(r[1])) for r in rows]
