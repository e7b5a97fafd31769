"""Negative feedback wiring (a thumbs-down on a gateway answer that retrieved from a document -> a finding on that
document) and the LLM adjudicator through the gateway, with the loopback fake upstream as the LLM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from llmops.rag.health.claims import Claim
from llmops.rag.health.contradictions import Conflict
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

DOCS = [
    {"id": "pets.md", "text": "# Pets\n\nDogs are allowed in the office on Fridays if they are house-trained.",
     "format": "markdown"},
    {"id": "vpn.md", "text": "# VPN\n\nInstall the VPN client from the IT portal and sign in with your account.",
     "format": "markdown"},
]  # fmt: skip


def _chat(srv: RunningServer, question: str) -> str:
    r = httpx.post(
        srv.v1 + "/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": question}]},
        headers={**srv.headers(), "x-llmops-rag": "kb:1"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.headers["x-llmops-trace-id"]


def _score(c: httpx.Client, trace_id: str, value: Any, *, source: str = "user", name: str = "thumbs") -> None:
    r = c.post("/api/scores", json={"trace_id": trace_id, "name": name, "value": value, "source": source})
    assert r.status_code == 201, r.text


def test_negative_feedback_on_an_answer_flags_the_cited_document(
    server_factory: Callable[..., RunningServer], fake_upstream: FakeUpstream
) -> None:
    cfg = fake_config(fake_upstream, {"name": "chat", "deployments": [openai_dep(fake_upstream, "gpt-chat")]})
    srv = server_factory(config=cfg, rag_health={"background": False})
    with srv.client() as c:
        c.post("/api/rag/collections", json={"name": "kb"})
        assert c.post("/api/rag/kb/documents", json={"documents": DOCS}).status_code == 200
        bad = _chat(srv, "Can I bring my dog to the office?")
        good = _chat(srv, "How do I install the VPN client?")
        srv.flush()
        _score(c, bad, False)  # thumbs down from the end user
        _score(c, good, True)  # thumbs up: not negative
        _score(c, good, 0, source="llm_judge", name="faithfulness")  # an evaluator's score is not user feedback
        r = c.post("/api/rag/kb/check", json={})
        assert r.status_code == 200, r.text
        negative = [f for f in r.json()["findings"] if f["kind"] == "negative_feedback"]
        assert [(f["documents"][0]["source"], f["evidence"]["answers"]) for f in negative] == [("pets.md", 1)]
        assert not any("feedback" in n for n in r.json()["notes"])  # the source is wired in the app
        health = {h["document_id"]: h for h in c.get("/api/rag/kb/health").json()["documents"]}
        assert health["pets.md"]["negative_feedback"] == 1 and health["vpn.md"]["negative_feedback"] == 0
        assert health["pets.md"]["score"] < health["vpn.md"]["score"]

        _score(c, good, "bad", name="verdict", source="human")  # a reviewer's negative label counts too
        r = c.post("/api/rag/kb/check", json={})
        negative = {f["documents"][0]["source"] for f in r.json()["findings"] if f["kind"] == "negative_feedback"}
        assert negative == {"pets.md", "vpn.md"}


def _conflict(first: str, second: str, *, uncertain: bool = True) -> Conflict:
    def claim(i: int, doc: str, text: str) -> Claim:
        return Claim(i, doc, f"chunk-{i}", text, (), frozenset(), frozenset(), frozenset(), False)

    return Conflict(claim(1, "a.md", first), claim(2, "b.md", second), "direct", 0.0, needs_adjudication=uncertain)


def test_adjudicator_decides_uncertain_pairs_through_the_gateway(
    server_factory: Callable[..., RunningServer], fake_upstream: FakeUpstream
) -> None:
    """The fake echoes the prompt, so a passage carrying a JSON verdict makes the "LLM" answer it: a yes keeps the
    pair (score = confidence, reason in evidence), an answer without a verdict drops it, an upstream failure
    drops it and is counted, a certain pair is never sent; each call is a trace in the checked project."""
    cfg = fake_config(fake_upstream, {"name": "judge", "deployments": [openai_dep(fake_upstream, "gpt-judge")]})
    srv = server_factory(config=cfg, rag_health={"adjudicator_model": "judge"})
    health, loop = srv.services.rag_health, srv.services.loop
    assert health is not None and loop is not None
    project_id = srv.services.projects.list_projects()[0].project_id

    def run(conflicts: list[Conflict]) -> list[Conflict]:
        return asyncio.run_coroutine_threadsafe(health._adjudicate(project_id, conflicts), loop).result(60)  # noqa: SLF001

    verdict = '{"contradiction": true, "confidence": 0.8, "reason": "opposite rules"}'
    certain = _conflict("The fee is 10 EUR.", "The fee is 12 EUR.", uncertain=False)
    kept = run([_conflict(f"Dogs are allowed. {verdict}", "Dogs are banned."), _conflict("A is on.", "A is off."),
                certain])  # fmt: skip
    assert [k.first.text for k in kept] == [f"Dogs are allowed. {verdict}", certain.first.text]
    judged = kept[0]
    assert judged.score == 0.8 and not judged.needs_adjudication
    assert judged.evidence["adjudicator"] == {"contradiction": True, "confidence": 0.8, "reason": "opposite rules"}
    chats = [r for r in fake_upstream.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2  # the certain pair was not sent
    assert chats[0].json["model"] == "gpt-judge" and chats[0].json["temperature"] == 0
    assert "cannot both be true" in chats[0].json["messages"][0]["content"]

    fake_upstream.enqueue("status=500", "status=500")  # the call and its retry fail
    errors = health.adjudicator_errors
    assert run([_conflict(f"X. {verdict}", "Y.")]) == []
    assert health.adjudicator_errors == errors + 1

    srv.flush()
    with srv.client() as c:
        traces = c.get("/api/traces", params={"limit": 50}).json()["data"]
    assert sum(1 for t in traces if t.get("model") in ("judge", "gpt-judge")) >= 2
