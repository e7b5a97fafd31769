"""The SDK against a real llmops server: app spans exported over OTLP to ``POST /v1/traces``, the gateway's
span nested inside them, and scores stored through ``POST /api/scores``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

import llmops
from tests.conftest import RunningServer


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 30) -> Any:
    """Call ``fetch`` until ``done(result)``, at most ``timeout_s`` (bounded polling, no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture
def traced(server: RunningServer, clean_env: None) -> Iterator[openai.OpenAI]:
    """The SDK exporting to ``server`` (short batch delay) and a wrapped OpenAI client on its gateway."""
    llmops.init(server.base_url, server.key, set_global_provider=False, schedule_delay_ms=100)
    client = llmops.wrap_openai(openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0))
    try:
        yield client
    finally:
        client.close()
        llmops.shutdown()


def _trace(server: RunningServer, trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{server.base_url}/api/traces/{trace_id}", headers=server.headers(), timeout=30)
    return response.json() if response.status_code == 200 else None


def _flatten(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _flatten(node["children"])


def _app(client: openai.OpenAI) -> Callable[[str], tuple[str, str, str]]:
    @llmops.observe(name="answer", kind="agent")
    def answer(question: str) -> tuple[str, str, str]:
        llmops.set_user("user-e2e")
        with llmops.span("retrieve", kind="retrieval") as retrieve:
            retrieve.set_output(["doc-1"])
        reply = client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": question}], max_tokens=4
        )
        assert reply.choices[0].message.content is not None
        return llmops.current_trace_id() or "", llmops.current_span_id() or "", reply.choices[0].message.content

    return answer


def test_gateway_span_joins_the_app_trace(server: RunningServer, traced: openai.OpenAI) -> None:
    """A gateway call made inside an observed function is recorded by the server in the app's trace, as a
    child of the app's span, with the user set in the app."""
    trace_id, span_id, _ = _app(traced)("Say hi.")
    server.flush()
    detail = poll(lambda: _trace(server, trace_id), lambda d: d is not None)
    assert detail is not None, "the gateway span did not reach the app's trace"
    gateway = next(n for n in _flatten(detail["spans"]) if n["name"] == "chat local")
    assert gateway["trace_id"] == trace_id and gateway["parent_span_id"] == span_id
    assert gateway["user_id"] == "user-e2e"


def test_app_spans_nest_the_gateway_call(server: RunningServer, traced: openai.OpenAI) -> None:
    """After export, ``GET /api/traces/{id}`` shows the app's span tree: ``answer`` at the root, with the
    retrieval span and the gateway's model call as its children."""
    trace_id, span_id, _ = _app(traced)("Say hi.")
    assert llmops.flush(timeout_s=30)
    server.flush()
    detail = poll(
        lambda: _trace(server, trace_id),
        lambda d: d is not None and {n["name"] for n in _flatten(d["spans"])} >= {"answer", "retrieve", "chat local"},
    )
    assert detail is not None
    (root,) = detail["spans"]
    assert root["name"] == "answer" and root["span_id"] == span_id and root["kind"] == "agent"
    assert {c["name"] for c in root["children"]} == {"retrieve", "chat local"}
    assert root["user_id"] == "user-e2e"


def test_score_reaches_the_server_once(server: RunningServer, traced: openai.OpenAI) -> None:
    """``llmops.score`` on a trace is stored by ``POST /api/scores`` in the background; sent twice with the
    same idempotency key it is stored once."""
    trace_id, _, _ = _app(traced)("Say hi.")
    server.flush()
    for _ in range(2):
        assert llmops.score("helpful", 1.0, trace_id=trace_id, source="user", idempotency_key=f"e2e-{trace_id}")
    assert llmops.flush(timeout_s=30)
    scores = httpx.get(
        f"{server.base_url}/api/scores", params={"trace_id": trace_id}, headers=server.headers(), timeout=30
    ).json()["data"]
    assert [(s["name"], s["value"], s["source"]) for s in scores] == [("helpful", 1.0, "user")]


def test_score_on_the_current_span_waits_for_the_span(server: RunningServer, traced: openai.OpenAI) -> None:
    """A score given inside an observed function names its span, which the server has not seen yet; the
    sender retries until the exported span is ingested, then the score is stored on that span."""

    @llmops.observe
    def judged() -> str:
        llmops.score("grounded", True)
        return llmops.current_span_id() or ""

    span_id = judged()
    assert llmops.flush(timeout_s=30)
    scores = httpx.get(f"{server.base_url}/api/scores", params={"span_id": span_id}, headers=server.headers())
    assert [s["name"] for s in scores.json()["data"]] == ["grounded"]
