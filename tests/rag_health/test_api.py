"""Corpus health end to end through a real server: push the shipped corpus, check, list and resolve findings,
re-check (statuses survive), incremental re-check after an edit, per-document health, project isolation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from llmops.rag.health.corpus import load_corpus
from tests.conftest import RunningServer
from tests.rag_health.conftest import CORPUS

COLLECTION = "handbook"
PICK = [  # a slice of the corpus: two planted conflicts, one duplicate pair, one stale document, hard negatives
    "pet-policy.md", "office-guide-berlin.md", "sla.md", "status-page-faq.md", "webhooks.md",
    "webhooks-partner.md", "vpn-setup-2022.md", "api-rate-limits.md", "enterprise-limits.md",
]  # fmt: skip


def _push(c: httpx.Client, docs: list[dict[str, Any]]) -> None:
    r = c.post(f"/api/rag/{COLLECTION}/documents", json={"documents": docs})
    assert r.status_code == 200, r.text


def _docs(names: list[str]) -> list[dict[str, Any]]:
    files = {f.document_id: f for f in load_corpus(CORPUS / "docs")}
    return [
        {
            "id": n,
            "text": files[n].text,
            "format": "markdown",
            "source": n,
            "title": files[n].title,
            "effective_date": files[n].effective_date.isoformat() if files[n].effective_date else None,
        }
        for n in names
    ]


def _pairs(findings: list[dict[str, Any]], kind: str) -> set[frozenset[str]]:
    return {frozenset(d["source"] for d in f["documents"]) for f in findings if f["kind"] == kind}


def test_check_resolve_recheck_incremental(server_factory: Callable[..., RunningServer]) -> None:
    """The API finds planted conflicts (naming sources, quoting passages), statuses survive a re-check, an edit
    re-checks only its pairs, and the health endpoint scores the conflicting documents lower."""
    srv = server_factory()
    with srv.client() as c:
        assert c.post("/api/rag/collections", json={"name": COLLECTION}).status_code == 201
        _push(c, _docs(PICK))
        r = c.post(f"/api/rag/{COLLECTION}/check", json={})
        assert r.status_code == 200, r.text
        findings = r.json()["findings"]
        contradictions = _pairs(findings, "contradiction")
        assert contradictions == {
            frozenset({"pet-policy.md", "office-guide-berlin.md"}),
            frozenset({"sla.md", "status-page-faq.md"}),
        }
        dogs = next(f for f in findings if "pet-policy.md" in {d["source"] for d in f["documents"]})
        assert dogs["subtype"] == "direct" and dogs["status"] == "open"
        assert any("Dogs are not allowed" in p for p in dogs["passages"])
        assert frozenset({"webhooks.md", "webhooks-partner.md"}) in _pairs(findings, "duplicate")
        assert any(f["kind"] == "stale" and f["documents"][0]["source"] == "vpn-setup-2022.md" for f in findings)

        r = c.post(f"/api/rag/{COLLECTION}/findings/{dogs['finding_id']}", json={"action": "ignore"})
        assert r.status_code == 200 and r.json()["status"] == "ignored"
        c.post(f"/api/rag/{COLLECTION}/check", json={})  # a full re-check keeps the status
        ignored = c.get(f"/api/rag/{COLLECTION}/findings", params={"status": "ignored"}).json()["findings"]
        assert [f["finding_id"] for f in ignored] == [dogs["finding_id"]]

        health = {h["source"]: h for h in c.get(f"/api/rag/{COLLECTION}/health").json()["documents"]}
        assert health["sla.md"]["score"] < health["api-rate-limits.md"]["score"] == 100
        assert health["pet-policy.md"]["contradictions"] == 0  # ignored findings do not count

        fixed = _docs(["status-page-faq.md"])
        fixed[0]["text"] = fixed[0]["text"].replace("99.5%", "99.9%")
        _push(c, fixed)  # the ingest hook re-checks the changed document
        r = c.post(f"/api/rag/{COLLECTION}/check", json={"document_ids": ["status-page-faq.md"]})
        assert r.status_code == 200
        assert _pairs(r.json()["findings"], "contradiction") == set()
        stored = c.get(f"/api/rag/{COLLECTION}/findings", params={"kind": "contradiction"}).json()["findings"]
        assert _pairs(stored, "contradiction") == {frozenset({"pet-policy.md", "office-guide-berlin.md"})}

        assert c.get(f"/api/rag/{COLLECTION}/findings", params={"kind": "bogus"}).status_code == 400


def test_other_projects_see_nothing(server_factory: Callable[..., RunningServer]) -> None:
    """Another project's key gets 404 on every corpus-health route of this project's collection."""
    srv = server_factory()
    with srv.client() as c:
        assert c.post("/api/rag/collections", json={"name": COLLECTION}).status_code == 201
        _push(c, _docs(["pet-policy.md", "office-guide-berlin.md"]))
        finding = c.post(f"/api/rag/{COLLECTION}/check", json={}).json()["findings"][0]
    other = srv.services.projects.create_project("other")
    key = srv.services.projects.create_key_in(other.project_id, "k", is_admin=True).secret
    with srv.client(key) as c:
        assert c.post(f"/api/rag/{COLLECTION}/check", json={}).status_code == 404
        assert c.get(f"/api/rag/{COLLECTION}/findings").status_code == 404
        assert c.get(f"/api/rag/{COLLECTION}/health").status_code == 404
        r = c.post(f"/api/rag/{COLLECTION}/findings/{finding['finding_id']}", json={"action": "resolve"})
        assert r.status_code == 404
    with srv.client() as c:
        assert c.get(f"/api/rag/{COLLECTION}/findings", params={"status": "open"}).json()["findings"]
