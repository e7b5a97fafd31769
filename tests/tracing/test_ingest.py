"""OTLP/HTTP ingest at ``POST /v1/traces`` on a real server (loopback, real SQLite): the official OpenTelemetry
exporter, JSON, gzip, OpenInference, traceparent nesting with the gateway, partial success, every error status."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmops.core.settings import TracingSettings
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support import otlp
from tests.support.fake_upstream import FakeUpstream


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def _collect(build: Callable[[trace.Tracer], None]) -> list[Any]:
    """Run ``build`` with a tracer whose finished spans are kept in memory; return them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("tests.ingest"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def _nested(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("agent run") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT) as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.provider.name", "openai")
            llm.set_attribute("gen_ai.request.model", "gpt-4o")
            llm.set_attribute("gen_ai.usage.input_tokens", 11)
            llm.set_attribute("gen_ai.usage.output_tokens", 3)
            with tracer.start_as_current_span("execute_tool lookup") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_status(trace.Status(trace.StatusCode.ERROR, "lookup failed"))


def _trace(srv: RunningServer, trace_id: str) -> dict[str, Any]:
    with srv.client() as c:
        r = c.get(f"/api/traces/{trace_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_official_exporter_sends_a_nested_trace(server: RunningServer, compression: Compression) -> None:
    """The real OTLPSpanExporter (protobuf, plain or gzip) gets SUCCESS only once the spans are stored; the
    trace comes back from /api/traces/{id} as a tree with the columns filled and the resource kept."""
    spans = _collect(_nested)
    exporter = OTLPSpanExporter(
        endpoint=f"{srv_url(server)}/v1/traces", headers=server.headers(), compression=compression, timeout=30
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    t = _trace(server, _hex(spans[0].context.trace_id))
    assert t["span_count"] == 3 and t["status"] == "error" and t["name"] == "agent run"
    (root,) = t["spans"]
    (llm,) = root["children"]
    (tool,) = llm["children"]
    assert (root["kind"], llm["kind"], tool["kind"]) == ("agent", "llm", "tool")
    assert (llm["request_model"], llm["provider"], llm["input_tokens"], llm["output_tokens"]) == (
        "gpt-4o",
        "openai",
        11,
        3,
    )
    assert llm["attributes"]["otel.span_kind"] == "client" and llm["key_id"]
    assert (tool["status"], tool["error"]) == ("error", "lookup failed")
    assert root["attributes"]["resource"]["service.name"] == "checkout"
    assert t["input_tokens"] == 11


def srv_url(server: RunningServer) -> str:
    return server.base_url


def test_json_encoding_is_answered_in_json(server: RunningServer) -> None:
    """OTLP/JSON (hex ids, int64 strings) is stored the same way and answered with a JSON response."""
    tid, sid = otlp.new_ids()
    req = otlp.request([otlp.span(tid, sid, "json span", attrs={"gen_ai.request.model": "m", "n": 2**60})])
    with server.client() as c:
        r = c.post("/v1/traces", content=orjson.dumps(otlp.to_json(req)), headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == {}
        gz = gzip.compress(orjson.dumps(otlp.to_json(otlp.request([otlp.span(tid, otlp.new_ids()[1])]))))
        r2 = c.post("/v1/traces", content=gz, headers={"content-type": "application/json", "content-encoding": "gzip"})
        assert r2.status_code == 200
    t = _trace(server, tid)
    assert t["span_count"] == 2 and t["spans"][0]["attributes"]["n"] == 2**60


def test_openinference_and_gateway_traceparent_nest_in_one_trace(
    fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]
) -> None:
    """An app span exported over OTLP is the parent of (a) the OpenInference instrumentor's span around an
    OpenAI SDK call and (b) the gateway's own span for that call, linked by the traceparent header."""
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor

    srv = server_factory(fake_config(fake_upstream, {"name": "up", "deployments": [openai_dep(fake_upstream, "m")]}))
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    instrumentor = OpenAIInstrumentor()
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor.instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("app").start_as_current_span("handle request") as root:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            client.chat.completions.create(
                model="up", messages=[{"role": "user", "content": "hello there"}], extra_headers=headers
            )
    finally:
        instrumentor.uninstrument()
    provider.shutdown()
    exporter = OTLPSpanExporter(endpoint=srv.base_url + "/v1/traces", headers=srv.headers())
    assert exporter.export(list(memory.get_finished_spans())) == SpanExportResult.SUCCESS
    srv.flush()
    t = _trace(srv, _hex(root.get_span_context().trace_id))
    (app,) = t["spans"]
    kinds = sorted((c["name"], c["kind"]) for c in app["children"])
    assert app["name"] == "handle request" and len(kinds) == 2, kinds
    oi = next(c for c in app["children"] if c["attributes"].get("openinference.span.kind") == "LLM")
    gw = next(c for c in app["children"] if c is not oi)
    assert oi["kind"] == "llm" and oi["operation"] == "chat" and oi["request_model"] == "up"
    assert oi["input"][-1]["parts"][0]["content"] == "hello there"
    assert oi["input_tokens"] and oi["output_tokens"] and oi["output"][0]["role"] == "assistant"
    assert gw["name"] == "chat up" and gw["attributes"]["llmops.deployment"]


def test_partial_success_stores_the_good_spans(server: RunningServer) -> None:
    """A batch with one bad span: 200, partial_success names it, the good spans are stored."""
    tid, sid = otlp.new_ids()
    good = [otlp.span(tid, sid), otlp.span(tid, otlp.new_ids()[1], parent=sid)]
    bad = otlp.span("00" * 16, otlp.new_ids()[1])
    with server.client() as c:
        r = otlp.post(c, otlp.request([good[0], bad, good[1]]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    rejected, message = otlp.partial_success(r)
    assert rejected == 1 and "trace_id" in message
    assert _trace(server, tid)["span_count"] == 2


def test_a_replayed_batch_is_stored_once(server: RunningServer) -> None:
    """Idempotent ids: the same batch posted three times (a retrying exporter) leaves one copy of each span."""
    tid, sid = otlp.new_ids()
    req = otlp.request([otlp.span(tid, sid), *(otlp.span(tid, otlp.new_ids()[1], parent=sid) for _ in range(4))])
    with server.client() as c:
        for _ in range(3):
            assert otlp.post(c, req).status_code == 200
    t = _trace(server, tid)
    assert t["span_count"] == 5 and len(t["spans"][0]["children"]) == 4


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_partly_replayed_batch_adds_only_its_new_spans(
    server_factory: Callable[..., RunningServer], workers: int
) -> None:
    """Same result with workers that commit themselves (2), one worker beside the writer thread (1) and in-thread
    (0): a batch repeating stored spans next to new ones stores the new ones, and the trace's aggregates count
    each span once (tokens, span count)."""
    srv = server_factory(tracing=TracingSettings(ingest_workers=workers))
    deadline = time.monotonic() + 60
    while workers and not srv.services.ingest.worker_ready():  # started in the background at start-up
        assert time.monotonic() < deadline, "the ingest worker process did not start"
        time.sleep(0.05)
    tid, sid = otlp.new_ids()
    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}
    first = [otlp.span(tid, sid, attrs=usage), otlp.span(tid, otlp.new_ids()[1], parent=sid, attrs=usage)]
    more = [otlp.span(tid, otlp.new_ids()[1], parent=sid, attrs=usage) for _ in range(3)]
    with srv.client() as c:
        assert otlp.post(c, otlp.request(first)).status_code == 200
        assert otlp.post(c, otlp.request([*first, *more])).status_code == 200
        assert otlp.post(c, otlp.request([*first, *more])).status_code == 200
    t = _trace(srv, tid)
    assert t["span_count"] == 5
    assert (t["input_tokens"], t["output_tokens"]) == (50, 10)
    assert srv.services.ingest.stats.prepared_in_worker == (3 if workers else 0)
    assert srv.services.ingest.stats.committed_in_worker == (3 if workers >= 2 else 0)


def _status(resp: httpx.Response) -> Status:
    msg = Status()
    msg.ParseFromString(resp.content)
    return msg


def test_errors_are_google_rpc_status_with_the_right_codes(server_factory: Callable[..., RunningServer]) -> None:
    """Malformed -> 400, too big (also after gunzip) -> 413, wrong type/encoding -> 415, bad ids or a huge
    attribute in the only span -> 400, no or wrong key -> 401; never a 500. Bodies are google.rpc.Status."""
    srv = server_factory(tracing={"max_ingest_bytes": 50_000, "max_attribute_chars": 1_000})
    tid, sid = otlp.new_ids()
    with srv.client() as c, httpx.Client(base_url=srv.base_url) as anon:
        r = otlp.post(c, b"\x0a\xff\xff garbage")
        assert r.status_code == 400 and _status(r).code == 3 and r.headers["x-should-retry"] == "false"
        r = c.post("/v1/traces", content=b"{nope", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == 3 and "JSON" in r.json()["message"]
        assert otlp.post(c, b"\0" * 60_000).status_code == 413
        bomb = otlp.post(c, otlp.request([otlp.span(tid, sid, attrs={"pad": "x" * 900})] * 80), gzip=True)
        assert bomb.status_code == 413 and _status(bomb).code == 8
        assert c.post("/v1/traces", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        assert otlp.post(c, b"", content_encoding="br").status_code == 415
        r = otlp.post(c, otlp.request([otlp.span("ab" * 8, sid)]))
        assert r.status_code == 400 and "trace_id" in _status(r).message
        r = otlp.post(c, otlp.request([otlp.span(tid, sid, attrs={"prompt": "y" * 1_001})]))
        assert r.status_code == 400 and "longer than 1000" in _status(r).message
        r = otlp.post(anon, otlp.request([otlp.span(tid, sid)]))
        assert r.status_code == 401 and _status(r).code == 16
        assert otlp.post(anon, b"", authorization="Bearer sk-llmops-wrong").status_code == 401
        assert otlp.post(anon, b"", x_api_key=srv.key).status_code == 200  # x-api-key works too
    with srv.client() as c:
        assert c.get(f"/api/traces/{tid}").status_code == 404  # nothing above was stored


@pytest.mark.postgres
def test_database_down_is_503_with_retry_after(server_factory, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    """With the database refusing connections, ingest answers 503 + Retry-After (exporters retry), never
    500, and stores the batch once the database is back."""
    import uuid

    import psycopg

    from tests.support.postgres import create_database

    name = "ingest_" + uuid.uuid4().hex[:10]
    srv = server_factory(database_url=create_database(pg_server, name))
    tid, sid = otlp.new_ids()
    req = otlp.request([otlp.span(tid, sid)])
    admin_url = pg_server.replace("postgresql+psycopg://", "postgresql://")

    def allow(on: bool) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(on).lower()}')
            if not on:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    with srv.client() as c:
        assert otlp.post(c, otlp.request([otlp.span(*otlp.new_ids())])).status_code == 200  # warm the key cache
        allow(False)
        try:
            r = otlp.post(c, req)
            assert r.status_code == 503 and r.headers["retry-after"] and _status(r).code == 14, r.content
        finally:
            allow(True)
        deadline = time.monotonic() + 30
        while (r := otlp.post(c, req)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.status_code == 200
    assert _trace(srv, tid)["span_count"] == 1
