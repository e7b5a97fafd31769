"""The background incremental check: ingest does not wait for it, the queue coalesces per collection and is
bounded, it survives a restart (the queue is a database row), its state is visible in the API; the app loads ONE
NLI model for the scorers and corpus health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from llmops.app import attach_rag, attach_rag_health, build_services, evaluator_factory, shared_nli
from llmops.core.settings import Settings
from llmops.rag._health_sql import SqlFindingStore
from llmops.rag.service import DocumentInput
from tests.conftest import RunningServer
from tests.rag_health.test_api import _docs

PAIR = ["pet-policy.md", "office-guide-berlin.md"]  # one planted direct contradiction


def _wait_state(c: httpx.Client, collection: str, state: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = c.get(f"/api/rag/{collection}/check").json()
        if body["state"] == state:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_ingest_returns_before_the_check_and_findings_follow(server_factory: Callable[..., RunningServer]) -> None:
    """The push answers while the check is still queued (debounce 3 s), the status says so, and the findings
    of the changed documents appear once the worker has run; the last run's figures are in the status."""
    srv = server_factory(rag_health={"debounce_s": 3.0})
    with srv.client() as c:
        assert c.post("/api/rag/collections", json={"name": "kb"}).status_code == 201
        assert c.get("/api/rag/kb/check").json()["state"] == "idle"
        r = c.post("/api/rag/kb/documents", json={"documents": _docs(PAIR)})
        assert r.status_code == 200, r.text
        queued = c.get("/api/rag/kb/check").json()
        assert queued["state"] == "queued" and queued["queued_documents"] == 2, queued
        assert queued["worker"] == "running"
        assert c.get("/api/rag/kb/findings").json()["findings"] == []  # not checked yet: ingest did not wait
        done = _wait_state(c, "kb", "idle")
        assert done["last"]["documents"] == 2 and done["last"]["error"] is None
        assert done["last"]["findings"] >= 1
        kinds = {(f["kind"], f["subtype"]) for f in c.get("/api/rag/kb/findings").json()["findings"]}
        assert ("contradiction", "direct") in kinds
        assert c.get("/api/rag/nope/check").status_code == 404


def test_inline_mode_waits_for_the_check(server_factory: Callable[..., RunningServer]) -> None:
    """LLMOPS_RAG_HEALTH_BACKGROUND=false keeps the old behaviour: findings exist when the push answers."""
    srv = server_factory(rag_health={"background": False})
    with srv.client() as c:
        c.post("/api/rag/collections", json={"name": "kb"})
        assert c.post("/api/rag/kb/documents", json={"documents": _docs(PAIR)}).status_code == 200
        assert any(f["kind"] == "contradiction" for f in c.get("/api/rag/kb/findings").json()["findings"])
        assert c.get("/api/rag/kb/check").json()["state"] == "inline"


def test_queue_coalesces_per_collection_and_is_bounded(tmp_path: Path) -> None:
    """Ingests merge into one row per collection; past the bound the row means "check everything"; a clear
    with a stale token (documents were added meanwhile) keeps the row; findings lists never show it."""
    services = build_services(Settings(home=tmp_path))
    store = SqlFindingStore(services.engine)
    a = store.add_pending("p1", "kb", ["a.md", "b.md"], max_documents=3, now_ns=10)
    b = store.add_pending("p1", "kb", ["b.md", "c.md"], max_documents=3, now_ns=11)
    other = store.add_pending("p2", "kb", ["x.md"], max_documents=3, now_ns=12)
    assert b.document_ids == ("a.md", "b.md", "c.md") and b.token > a.token and b.since_ns == 10
    assert [(p.project_id, p.document_ids) for p in store.list_pending()] == [
        ("p1", ("a.md", "b.md", "c.md")),
        ("p2", ("x.md",)),
    ]
    assert not store.clear_pending("p1", "kb", a.token)  # stale token: the row stays
    full = store.add_pending("p1", "kb", ["d.md"], max_documents=3, now_ns=13)
    assert full.document_ids is None  # 4 > 3: one full check instead
    assert store.add_pending("p1", "kb", ["e.md"], max_documents=3, now_ns=14).document_ids is None
    assert store.list_findings("p1", "kb") == []
    assert store.clear_pending("p1", "kb", store.list_pending("p1", "kb")[0].token)
    assert store.list_pending("p1") == [] and store.list_pending("p2")[0].token == other.token
    services.engine.dispose()


def test_queued_check_survives_a_restart(tmp_path: Path) -> None:
    """Documents queued by an ingest whose process stopped before the check ran are checked by the next
    process's worker: the queue is durable."""
    settings = Settings(home=tmp_path, rag_health={"debounce_s": 30.0})

    project = _project(settings)

    async def ingest_then_die() -> None:
        svc = build_services(settings)
        attach_rag(svc)
        attach_rag_health(svc)
        assert svc.rag is not None and svc.rag_health is not None and svc.rag_health.background is not None
        await svc.rag.create_collection(project, "kb")
        docs = [
            DocumentInput(document_id=d["id"], text=d["text"], format="markdown", source=d["source"])
            for d in _docs(PAIR)
        ]
        await svc.rag.ingest(project, "kb", docs)
        assert svc.rag_health.background.started  # queued; the 30 s debounce keeps it from running
        await svc.rag_health.background.stop()  # the process "dies" before the check
        svc.engine.dispose()

    async def restart() -> list[Any]:
        svc = build_services(settings.model_copy(update={"rag_health": settings.rag_health.model_copy(
            update={"debounce_s": 0.0})}))  # fmt: skip
        attach_rag(svc)
        attach_rag_health(svc)
        assert svc.rag_health is not None and svc.rag_health.background is not None
        assert [p.document_ids for p in SqlFindingStore(svc.engine).list_pending()] == [tuple(sorted(PAIR))]
        svc.rag_health.background.start()
        await svc.rag_health.background.drain(timeout_s=120)
        await svc.rag_health.background.stop()
        found = svc.rag_health.list_findings(project, "kb", kind="contradiction")
        svc.engine.dispose()
        return found

    asyncio.run(ingest_then_die())
    found = asyncio.run(restart())
    assert {frozenset(f.sources) for f in found} == {frozenset(PAIR)}


def _project(settings: Settings) -> str:
    svc = build_services(settings)
    project_id = svc.projects.list_projects()[0].project_id
    svc.engine.dispose()
    return project_id


def test_one_nli_model_for_scorers_and_corpus_health(server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory()
    svc = srv.services
    assert svc.rag_health is not None
    nli = shared_nli(svc)
    assert svc.rag_health._nli is nli  # noqa: SLF001 - the wiring under test
    factory = evaluator_factory(svc)
    assert factory is not None
    scorer = factory("faithfulness", srv.services.projects.list_projects()[0].project_id)
    assert scorer._deps.get_nli() is nli  # type: ignore[attr-defined]  # noqa: SLF001
