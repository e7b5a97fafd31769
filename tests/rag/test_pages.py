"""The RAG pages over a real server: collections list, a collection with documents / index versions and the
search playground (full page and htmx fragment), a document with chunks and history; unknown ones get 404
(other projects: tests/test_tenancy.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import RunningServer
from tests.rag.conftest import CORPUS


def test_rag_pages(server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory()
    api = srv.client()
    api.post("/api/rag/collections", json={"name": "kb"})
    docs = [{"id": f"{k}.md", "text": v, "format": "markdown"} for k, v in CORPUS.items()]
    api.post("/api/rag/kb/documents", json={"documents": docs})
    api.post(
        "/api/rag/kb/documents",
        json={"documents": [{"id": "refunds.md", "text": CORPUS["refunds"] + "\nNew line.\n", "format": "markdown"}]},
    )
    web = httpx.Client(base_url=srv.base_url, cookies={"llmops_key": srv.key}, timeout=60)
    home = web.get("/rag")
    assert home.status_code == 200 and 'data-collection="kb"' in home.text and 'href="/rag"' in home.text
    page = web.get("/rag/kb")
    assert page.status_code == 200 and page.text.count('class="document-row"') == 3 and "Index versions" in page.text
    frag = web.get("/rag/kb/search", params={"q": "two-factor administrators", "k": 2}, headers={"hx-request": "true"})
    assert frag.status_code == 200 and "<html" not in frag.text and frag.text.count('class="rag-hit"') == 2
    assert "security.md" in frag.text.split('class="rag-hit"')[1]
    full = web.get("/rag/kb/search", params={"q": "refund"})
    assert full.status_code == 200 and "<html" in full.text and 'class="rag-hit"' in full.text
    doc = web.get("/rag/kb/documents/refunds.md")
    assert doc.status_code == 200 and doc.text.count('class="rag-version"') == 2 and "New line." in doc.text
    assert web.get("/rag/nope").status_code == 404
    assert web.get("/rag/kb/documents/nope.md").status_code == 404
