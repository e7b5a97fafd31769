"""Scores, sessions, users, trace queries, score metrics and export over HTTP against a real server."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import openai
import orjson
import pytest

from llmops.tracing import Span
from tests.conftest import RunningServer


def record(srv: RunningServer, *spans: Span) -> None:
    """Record spans through the server's own recorder (on its loop) and wait until they are committed."""
    loop = srv.services.loop
    assert loop is not None

    async def put() -> None:
        for s in spans:
            srv.services.recorder.record(s)
        await srv.services.recorder.flush()

    asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)


def project_of(srv: RunningServer) -> str:
    assert srv.services.bootstrap_key is not None
    return srv.services.bootstrap_key.key.project_id


def span(srv: RunningServer, *, start_ns: int | None = None, **kw) -> Span:  # type: ignore[no-untyped-def]
    start = start_ns or time.time_ns() - 10**9
    fields = dict(name="chat local", kind="llm", operation="chat", request_model="local", cost_usd=0.01)
    fields.update(kw)
    return Span(
        trace_id=kw.pop("trace_id", None) or secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        project_id=project_of(srv),
        start_ns=start,
        end_ns=start + 20_000_000,
        **{k: v for k, v in fields.items() if k != "trace_id"},
    )  # type: ignore[arg-type]


def chat(user: str, answer: str) -> dict[str, object]:
    return {
        "input": [{"role": "user", "parts": [{"type": "text", "content": user}]}],
        "output": [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}],
    }


def test_scores_lifecycle(server: RunningServer) -> None:
    """POST creates (201) and an idempotency key (body or header) replays the same score with 200; unknown
    traces/spans are 404, bad values 400; GET lists with filters and cursor; the trace detail shows scores;
    DELETE removes (then 404)."""
    root = span(server)
    record(server, root)
    tid = root.trace_id
    with server.client() as c:
        first = c.post("/api/scores", json={"trace_id": tid, "name": "thumbs", "value": True, "idempotency_key": "a"})
        assert first.status_code == 201, first.text
        again = c.post("/api/scores", json={"trace_id": tid, "name": "thumbs", "value": False, "idempotency_key": "a"})
        assert again.status_code == 200 and again.json() == first.json() and first.json()["value"] is True
        by_header = [
            c.post("/api/scores", json={"trace_id": tid, "name": "q", "value": 0.5}, headers={"Idempotency-Key": "h"})
            for _ in range(2)
        ]
        assert [r.status_code for r in by_header] == [201, 200]
        label = c.post(
            "/api/scores",
            json={"trace_id": tid, "span_id": root.span_id, "name": "label", "value": "helpful", "source": "human"},
        )
        assert label.status_code == 201 and label.json()["data_type"] == "categorical"
        assert c.post("/api/scores", json={"trace_id": "f" * 32, "name": "x", "value": 1}).status_code == 404
        assert (
            c.post("/api/scores", json={"trace_id": tid, "span_id": "f" * 16, "name": "x", "value": 1}).status_code
            == 404
        )
        assert (
            c.post("/api/scores", json={"trace_id": tid, "name": "x", "value": 1, "source": "bot"}).status_code == 400
        )
        assert c.post("/api/scores", json={"trace_id": tid, "name": "", "value": 1}).status_code == 400
        listed = c.get("/api/scores", params={"trace_id": tid, "limit": 2}).json()
        assert len(listed["data"]) == 2 and listed["next_cursor"]
        rest = c.get("/api/scores", params={"trace_id": tid, "cursor": listed["next_cursor"]}).json()
        assert len(rest["data"]) == 1 and rest["next_cursor"] is None
        assert [s["name"] for s in c.get("/api/scores", params={"source": "human"}).json()["data"]] == ["label"]
        detail = c.get(f"/api/traces/{tid}").json()
        assert sorted(s["name"] for s in detail["scores"]) == ["label", "q", "thumbs"]
        score_id = first.json()["score_id"]
        assert c.get(f"/api/scores/{score_id}").json()["name"] == "thumbs"
        assert c.delete(f"/api/scores/{score_id}").json() == {"score_id": score_id, "deleted": True}
        assert c.delete(f"/api/scores/{score_id}").status_code == 404
        assert c.get(f"/api/scores/{score_id}").status_code == 404


def test_trace_filters_over_http(server: RunningServer) -> None:
    """GET /api/traces filters by attr.<dotted key>, score.<name>=op:value, tag, cost and latency ranges and
    full-text q; malformed filters are 400."""
    a = span(
        server,
        attributes={"gen_ai.request.temperature": 0.7, "tag.tags": ["prod"]},
        cost_usd=1.0,
        **chat("Capital of France?", "Paris"),
    )
    b = span(server, attributes={"llmops.tags": ["dev"]}, **chat("Capital of Italy?", "Rome"))
    record(server, a, b)
    with server.client() as c:
        c.post("/api/scores", json={"trace_id": a.trace_id, "name": "accuracy", "value": 0.9})
        c.post("/api/scores", json={"trace_id": b.trace_id, "name": "accuracy", "value": 0.1})

        def ids(**params: object) -> list[str]:
            resp = c.get("/api/traces", params=params)  # type: ignore[arg-type]
            assert resp.status_code == 200, resp.text
            return [t["trace_id"] for t in resp.json()["data"]]

        assert ids(**{"attr.gen_ai.request.temperature": "0.7"}) == [a.trace_id]
        assert ids(**{"score.accuracy": "gt:0.5"}) == [a.trace_id]
        assert ids(**{"score.accuracy": "lt:0.5"}) == [b.trace_id]
        assert ids(tag="dev") == [b.trace_id]
        assert ids(min_cost=0.5) == [a.trace_id]
        assert ids(q="rome") == [b.trace_id]
        assert ids(q="capital", tag="prod") == [a.trace_id]
        assert set(ids(max_latency_ms=100)) == {a.trace_id, b.trace_id} and ids(min_latency_ms=100) == []
        assert c.get("/api/traces", params={"score.accuracy": "gt:high"}).status_code == 400
        assert c.get("/api/traces", params={'attr.a"b': "x"}).status_code == 400
        assert c.get("/api/traces", params={"min_cost": "cheap"}).status_code == 400
        trace = c.get(f"/api/traces/{a.trace_id}").json()
        assert trace["tags"] == ["prod"]


def test_sessions_and_users_from_gateway_traffic(server: RunningServer) -> None:
    """A conversation through the gateway (x-llmops-session / x-llmops-user) becomes a session whose turns hold
    the messages in order, and a user with requests, cost and a feedback summary from thumbs scores."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0)
    headers = {"x-llmops-user": "u-ann", "x-llmops-session": "conv/1"}
    history: list[dict[str, str]] = []
    trace_ids = []
    for question in ("Hello there", "Name a color"):
        history.append({"role": "user", "content": question})
        resp = client.chat.completions.with_raw_response.create(
            model="local",
            messages=history,
            max_tokens=4,
            temperature=0,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        trace_ids.append(resp.headers["x-llmops-trace-id"])
        history.append({"role": "assistant", "content": resp.parse().choices[0].message.content or ""})
    server.flush()
    with server.client() as c:
        c.post("/api/scores", json={"trace_id": trace_ids[1], "name": "thumbs", "value": False, "source": "user"})
        sessions = c.get("/api/sessions").json()["data"]
        assert [(s["session_id"], s["traces"], s["user_id"]) for s in sessions] == [("conv/1", 2, "u-ann")]
        detail = c.get("/api/sessions/conv/1").json()
        assert [t["trace_id"] for t in detail["turns"]] == trace_ids
        assert detail["turns"][1]["input"][-1]["parts"][0]["content"] == "Name a color"
        assert detail["turns"][1]["scores"][0]["value"] is False
        assert detail["feedback"] == [{"name": "thumbs", "count": 1, "mean": 0.0, "labels": {}}]
        users = c.get("/api/users").json()["data"]
        assert users[0]["user_id"] == "u-ann" and users[0]["requests"] == 2 and users[0]["errors"] == 0
        assert users[0]["feedback"][0]["name"] == "thumbs"
        user = c.get("/api/users/u-ann").json()
        assert user["recent_sessions"][0]["session_id"] == "conv/1" and user["input_tokens"] > 0
        assert c.get("/api/sessions/nope").status_code == 404
        assert c.get("/api/users/nope").status_code == 404
        assert c.get("/api/sessions", params={"cursor": "garbage!"}).status_code == 400


def test_score_metrics_and_grouped_metrics(server: RunningServer) -> None:
    """/api/metrics/scores gives the mean per score name over time; /api/metrics groups by prompt, session and tag."""
    a = span(
        server,
        session_id="s-1",
        attributes={"llmops.prompt.name": "greet", "llmops.prompt.version": 3, "tag.tags": ["x"]},
    )
    b = span(server, session_id="s-1")
    record(server, a, b)
    with server.client() as c:
        for value in (1, 0, 1, 1):
            c.post("/api/scores", json={"trace_id": a.trace_id, "name": "thumbs", "value": bool(value)})
        m = c.get("/api/metrics/scores", params={"bucket": 60}).json()
        assert m["names"][0]["name"] == "thumbs" and m["names"][0]["mean"] == pytest.approx(0.75)
        assert sum(b["count"] for b in m["names"][0]["series"]) == 4
        assert c.get("/api/metrics/scores", params={"name": "other"}).json()["names"] == []

        def groups(by: str) -> dict[str | None, int]:
            return {g["group"]: g["requests"] for g in c.get("/api/metrics", params={"group_by": by}).json()["groups"]}

        assert groups("prompt") == {"greet@3": 1, None: 1}
        assert groups("session") == {"s-1": 2}
        assert groups("tag") == {"x": 1, None: 1}


def test_export_streams_every_page_in_both_formats(server: RunningServer) -> None:
    """The export walks every page (more than one page of 200), applies the same filters as the list, and
    produces valid JSONL (trace + spans + scores) and OTLP/JSON (hex ids, string nanos, GenAI attributes)."""
    t0 = time.time_ns() - 3_600 * 10**9
    spans = [span(server, start_ns=t0 + i * 10**6, user_id="bulk", attributes={"i": i}) for i in range(205)]
    spans.append(span(server, user_id="other", **chat("hello export", "hi")))
    record(server, *spans)
    with server.client() as c:
        c.post("/api/scores", json={"trace_id": spans[0].trace_id, "name": "q", "value": 1})
        with c.stream("GET", "/api/traces/export", params={"format": "jsonl", "user": "bulk"}) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
            assert "attachment" in resp.headers["content-disposition"]
            lines = [orjson.loads(line) for line in resp.iter_lines() if line]
        assert len(lines) == 205 and len({r["trace_id"] for r in lines}) == 205
        first = next(r for r in lines if r["trace_id"] == spans[0].trace_id)
        assert first["spans"][0]["attributes"] == {"i": 0} and first["scores"][0]["name"] == "q"
        otlp = c.get("/api/traces/export", params={"format": "otlp-json", "q": "export"}).json()
        out = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert len(out) == 1 and out[0]["traceId"] == spans[-1].trace_id and out[0]["spanId"] == spans[-1].span_id
        assert out[0]["startTimeUnixNano"] == str(spans[-1].start_ns) and out[0]["kind"] == 3
        attrs = {a["key"]: a["value"] for a in out[0]["attributes"]}
        assert attrs["gen_ai.request.model"] == {"stringValue": "local"} and attrs["user.id"] == {
            "stringValue": "other"
        }
        assert "hello export" in attrs["gen_ai.input.messages"]["stringValue"]
        empty = c.get("/api/traces/export", params={"format": "otlp-json", "user": "nobody"}).json()
        assert empty["resourceSpans"][0]["scopeSpans"][0]["spans"] == []
        assert c.get("/api/traces/export", params={"format": "csv"}).status_code == 400
        assert httpx.get(server.base_url + "/api/traces/export").status_code == 401


def test_otlp_export_round_trips_through_ingest(server_factory) -> None:  # type: ignore[no-untyped-def]
    """An OTLP/JSON export posted to another server's POST /v1/traces recreates the same traces there: names,
    parent links, tokens, cost, user, session, tags and searchable messages."""
    source, target = server_factory(), server_factory()
    root = span(source, kind="agent", name="agent plan", operation=None, request_model=None, cost_usd=None)
    child = span(
        source,
        trace_id=root.trace_id,
        parent_span_id=root.span_id,
        user_id="u-rt",
        session_id="s-rt",
        input_tokens=5,
        output_tokens=3,
        attributes={"tag.tags": ["rt"]},
        **chat("round trip words", "fine"),
    )
    record(source, root, child)
    with source.client() as c:
        exported = c.get("/api/traces/export", params={"format": "otlp-json"}).content
        before = c.get(f"/api/traces/{root.trace_id}").json()
    with target.client() as c:
        assert c.post("/v1/traces", content=exported, headers={"content-type": "application/json"}).status_code == 200
        target.flush()
        after = c.get(f"/api/traces/{root.trace_id}").json()
        assert [t["trace_id"] for t in c.get("/api/traces", params={"q": "round trip"}).json()["data"]] == [
            root.trace_id
        ]
    keys = ("name", "user_id", "session_id", "input_tokens", "output_tokens", "cost_usd", "span_count", "tags")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert after["spans"][0]["children"][0]["span_id"] == child.span_id
    assert after["spans"][0]["children"][0]["input"] == child.input


def test_score_right_after_the_response_finds_the_trace(server: RunningServer) -> None:
    """A thumbs-up posted the moment a gateway response arrives (its span still queued for the writer) is
    accepted: the service waits for pending span writes before answering 404."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key, max_retries=0)
    with server.client() as c:
        for _ in range(3):
            resp = client.embeddings.with_raw_response.create(model="local-embed", input="quick feedback")
            body = {"trace_id": resp.headers["x-llmops-trace-id"], "name": "thumbs", "value": True}
            assert c.post("/api/scores", json=body).status_code == 201
