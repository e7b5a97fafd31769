"""SqlFindingStore contract on SQLite and PostgreSQL: sync keeps ids and statuses by fingerprint, deletes only
in its scope, and every query is scoped by project."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import NotFoundError
from llmops.rag._health_sql import SqlFindingStore
from llmops.rag.health.models import Finding, fingerprint


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'health.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "health_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _finding(a: str, b: str, text: str, kind: str = "contradiction") -> Finding:
    return Finding(
        finding_id="",
        collection="c",
        kind=kind,  # type: ignore[arg-type]
        subtype="numeric_mismatch",
        document_ids=(a, b),
        sources=(a + ".md", b + ".md"),
        chunk_ids=("ca", "cb"),
        passages=(text, text + "!"),
        score=0.9,
        evidence={"jaccard": 1.0},
        fingerprint=fingerprint(kind, [(a, text), (b, text + "!")]),
    )


def test_sync_keeps_status_and_scopes_deletes(engine: Engine) -> None:
    """Re-syncing the same finding keeps its id/status; a scoped sync deletes only findings touching its docs."""
    store = SqlFindingStore(engine)
    first = store.sync_findings("p1", "c", [_finding("a", "b", "x"), _finding("c", "d", "y")],
                                kinds=["contradiction"], document_ids=None, now_ns=1)  # fmt: skip
    assert {f.status for f in first} == {"open"}
    store.set_status("p1", "c", first[0].finding_id, "resolved", 2)
    again = store.sync_findings("p1", "c", [_finding("a", "b", "x")], kinds=["contradiction"],
                                document_ids=["a"], now_ns=3)  # fmt: skip
    assert again[0].finding_id == first[0].finding_id and again[0].status == "resolved"
    rows = store.list_findings("p1", "c")
    assert {f.document_ids for f in rows} == {("a", "b"), ("c", "d")}  # c/d untouched: out of scope
    store.sync_findings("p1", "c", [], kinds=["contradiction"], document_ids=["d"], now_ns=4)
    assert [f.document_ids for f in store.list_findings("p1", "c")] == [("a", "b")]
    assert store.list_findings("p1", "c", status="resolved")[0].evidence == {"jaccard": 1.0}


def test_projects_are_isolated(engine: Engine) -> None:
    """Another project sees no findings and cannot read or change them."""
    store = SqlFindingStore(engine)
    (f,) = store.sync_findings(
        "p1", "c", [_finding("a", "b", "x")], kinds=["contradiction"], document_ids=None, now_ns=1
    )
    assert store.list_findings("p2", "c") == []
    with pytest.raises(NotFoundError):
        store.get_finding("p2", "c", f.finding_id)
    with pytest.raises(NotFoundError):
        store.set_status("p2", "c", f.finding_id, "ignored", 2)
    store.sync_findings("p2", "c", [], kinds=["contradiction"], document_ids=None, now_ns=3)
    assert store.get_finding("p1", "c", f.finding_id).status == "open"
