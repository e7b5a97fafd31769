"""RAG fixtures: a migrated database on SQLite, on PostgreSQL and on PostgreSQL with pgvector, the real local
embedder (shared per session), a RagService over them, and a tiny document corpus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.settings import RagSettings
from llmops.gateway import OnnxEmbedder
from llmops.rag._sql import SqlRagStore
from llmops.rag.service import DocumentInput, RagService


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(threads=1)


@pytest.fixture(params=["sqlite", "postgres", "pgvector"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """ "postgres": Debian's server, no pgvector (in-process index); "pgvector": the bundled one (search in SQL)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rag.db'}"
    else:
        from tests.support.postgres import create_database

        server = request.getfixturevalue("pg_server" if request.param == "postgres" else "pgvector_server")
        url = create_database(server, "rag_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    eng = create_db_engine(f"sqlite:///{tmp_path / 'rag.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def service(engine: Engine, embedder: OnnxEmbedder) -> RagService:
    return RagService(SqlRagStore(engine), embedder, RagSettings(chunk_size=200, chunk_overlap=30))


CORPUS = {
    "refunds": "# Refund policy\n\nCustomers may return items within 30 days of purchase for a full refund.\n\n"
    "## Exceptions\n\nGift cards and perishable food cannot be refunded.\n",
    "shipping": "# Shipping\n\nStandard shipping takes 5 business days. Express shipping takes 1 business day "
    "and costs 15 euros.\n",
    "security": "# Security\n\nPasswords must be rotated every 90 days. Two-factor authentication is mandatory "
    "for administrators.\n",
}


def corpus_inputs(**overrides: str) -> list[DocumentInput]:
    texts = {**CORPUS, **overrides}
    return [
        DocumentInput(
            doc_id, text, "markdown", source=f"{doc_id}.md", metadata={"team": "ops" if doc_id != "security" else "it"}
        )
        for doc_id, text in texts.items()
    ]
