"""The RAG HTTP API and the gateway's retrieval injection on a real server (uvicorn, SQLite, real embedder)
with the fake upstream: JSON the client gets, what goes upstream, and the spans the trace records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.rag.conftest import CORPUS
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def srv(fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]) -> RunningServer:
    cfg = fake_config(fake_upstream, {"name": "local", "deployments": [openai_dep(fake_upstream, "up-main")]})
    return server_factory(cfg)


@pytest.fixture
def api(srv: RunningServer) -> httpx.Client:
    client = srv.client()
    assert client.post("/api/rag/collections", json={"name": "kb", "chunk_size": 300}).status_code == 201
    docs = [
        {"id": f"docs/{k}.md", "text": v, "format": "markdown", "metadata": {"owner": k, "source": f"{k}.md"}}
        for k, v in CORPUS.items()
    ]
    resp = client.post("/api/rag/kb/documents", json={"documents": docs})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["added"]) == 3 and resp.json()["index_version"] == 1
    return client


def _spans(srv: RunningServer, trace_id: str) -> list[dict[str, Any]]:
    srv.flush()
    return srv.client().get(f"/api/traces/{trace_id}/spans").json()["data"]  # type: ignore[no-any-return]


def test_collections_documents_versions_and_search(api: httpx.Client) -> None:
    """Create, list, push, read a document with chunks and its history, search, delete; errors are enveloped."""
    colls = api.get("/api/rag/collections").json()["data"]
    assert [(c["name"], c["documents"], c["index_version"]) for c in colls] == [("kb", 3, 1)]
    assert api.post("/api/rag/collections", json={"name": "kb"}).status_code == 409
    doc = api.get("/api/rag/kb/documents/docs/refunds.md").json()
    assert doc["source"] == "refunds.md" and doc["version"] == 1 and doc["chunks"][0]["heading"] == "Refund policy"
    edited = CORPUS["refunds"].replace("30 days", "45 days")
    push = api.post(
        "/api/rag/kb/documents", json={"documents": [{"id": "docs/refunds.md", "text": edited, "format": "markdown"}]}
    ).json()
    assert push["updated"] == ["docs/refunds.md"] and push["index_version"] == 2
    versions = api.get("/api/rag/kb/documents/docs/refunds.md/versions").json()["data"]
    assert [v["version"] for v in versions] == [2, 1] and "45 days" in versions[0]["text"]
    hits = api.post("/api/rag/kb/search", json={"query": "how long can I return things", "k": 2}).json()["data"]
    assert hits[0]["chunk"]["document_id"] == "docs/refunds.md" and "45 days" in hits[0]["chunk"]["text"]
    kw = api.post("/api/rag/kb/search", json={"query": "passwords rotated", "mode": "keyword"}).json()["data"]
    assert kw[0]["source"] == "security.md" and kw[0]["keyword_score"] > 0
    filtered = api.post("/api/rag/kb/search", json={"query": "refund", "filters": {"owner": "shipping"}}).json()
    assert {h["chunk"]["document_id"] for h in filtered["data"]} == {"docs/shipping.md"}
    assert api.delete("/api/rag/kb/documents/docs/shipping.md").json()["removed"] == ["docs/shipping.md"]
    assert api.get("/api/rag/kb/documents/docs/shipping.md").status_code == 404
    info = api.get("/api/rag/collections/kb").json()
    assert [v["version"] for v in info["index_versions"]] == [3, 2, 1] and info["documents"] == 2
    bad = api.post("/api/rag/kb/search", json={"query": "x", "k": 1000})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "k"
    missing = api.post("/api/rag/nope/search", json={"query": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_search_is_a_traced_retrieval_span(srv: RunningServer, api: httpx.Client) -> None:
    """Each search records a `retrieval` span listing chunk ids, sources and scores."""
    api.post("/api/rag/kb/search", json={"query": "express shipping price", "k": 2})
    srv.flush()
    traces = api.get("/api/traces", params={"limit": 10}).json()["data"]
    spans = [s for t in traces for s in _spans(srv, t["trace_id"]) if s["kind"] == "retrieval"]
    assert spans, traces
    attrs = spans[0]["attributes"]
    assert attrs["llmops.rag.collection"] == "kb" and len(attrs["retrieval.chunk_ids"]) == 2
    assert attrs["retrieval.document_sources"][0] == "shipping.md" and len(attrs["retrieval.scores"]) == 2


def test_gateway_injects_retrieved_context(srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream) -> None:
    """A chat with `x-llmops-rag` (or the `llmops.rag` body extension) sends the retrieved passages upstream in a
    system message; the chat's trace holds the retrieval span as a child of the chat span."""
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key)
    raw = client.chat.completions.with_raw_response.create(
        model="local",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Can I refund a gift card?"}],
        extra_headers={"x-llmops-rag": "kb:2"},
    )
    sent = fake_upstream.requests[-1].json
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user"]
    assert "Gift cards" in sent["messages"][1]["content"] and "refunds.md" in sent["messages"][1]["content"]
    assert "llmops" not in sent
    spans = _spans(srv, raw.headers["x-llmops-trace-id"])
    chat = next(s for s in spans if s["kind"] == "llm")
    retrieval = next(s for s in spans if s["kind"] == "retrieval")
    assert retrieval["parent_span_id"] == chat["span_id"]
    assert chat["attributes"]["llmops.rag.chunk_ids"] == retrieval["attributes"]["retrieval.chunk_ids"]
    client.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "How long does express shipping take?"}],
        extra_body={"llmops": {"rag": {"collection": "kb", "k": 1}}},
    )
    sent = fake_upstream.requests[-1].json
    assert "llmops" not in sent and "1 business day" in sent["messages"][0]["content"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-llmops-rag": "nope"}
        )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-llmops-rag": "kb:x"}
        )


def test_evaluate_reports_metrics_side_by_side(api: httpx.Client) -> None:
    """Labelled queries give hit rate, MRR, nDCG, context precision/recall for each mode and each variant."""
    queries = [
        {"query": "return items for a refund", "relevant": ["refunds.md"]},
        {"query": "two-factor authentication for administrators", "relevant": ["docs/security.md"]},
        {"query": "express shipping cost", "relevant": ["shipping.md"]},
    ]
    body = {
        "queries": queries,
        "k": 3,
        "modes": ["hybrid", "keyword"],
        "variants": [{"chunk_size": 64, "chunk_overlap": 8}],
    }
    resp = api.post("/api/rag/kb/evaluate", json=body)
    assert resp.status_code == 200, resp.text
    reports = resp.json()["reports"]
    assert [r["mode"] for r in reports] == ["hybrid", "keyword", "hybrid"] and reports[2]["chunk_size"] == 64
    hybrid = reports[0]["metrics"]
    assert hybrid["hit_rate"] == 1.0 and hybrid["mrr"] == 1.0 and 0 < hybrid["context_precision"] <= 1
    assert set(hybrid) == {"hit_rate", "mrr", "ndcg", "context_precision", "context_recall"}
    bad = api.post("/api/rag/kb/evaluate", json={"queries": [{"query": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "queries.0.relevant"


def test_sdk_rag_search(srv: RunningServer, api: httpx.Client) -> None:
    """`llmops.rag_search` returns the API's hits; a refused call raises with the envelope in the body."""
    import llmops

    hits = llmops.rag_search("kb", "two-factor authentication", k=1, base_url=srv.base_url, api_key=srv.key)
    assert len(hits) == 1 and hits[0]["source"] == "security.md" and hits[0]["chunk"]["text"]
    with pytest.raises(httpx.HTTPStatusError) as err:
        llmops.rag_search("missing", "x", base_url=srv.v1, api_key=srv.key)
    assert err.value.response.json()["error"]["code"] == "not_found"


def test_streaming_chat_gets_the_context_too(
    srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    """A streamed chat with `x-llmops-rag` also goes upstream with the retrieved context."""
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key)
    stream = client.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Are passwords rotated?"}],
        stream=True,
        extra_headers={"x-llmops-rag": "kb:1"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo:")
    sent = fake_upstream.requests[-1].json
    assert sent["stream"] is True and "90 days" in sent["messages"][0]["content"]
