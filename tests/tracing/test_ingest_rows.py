"""What OTLP ingest stores, pinned: protobuf bytes -> ``decode_protobuf`` -> ``SqlTraceStore.prepare_rows`` gives
exactly these span rows (column values and attribute JSON, key order included), trace aggregates and full-text
rows. The ingest hot path is tuned for CPU (one pass over the attributes, memoised key roles, fewer
allocations); these values were taken before that work and must not move."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.tracing._native import native
from llmops.tracing._otlp import DecodeContext, decode_protobuf
from llmops.tracing._sql import _SPAN_COLS, _TRACE_FIELDS, SqlTraceStore
from llmops.tracing._sql_query import MAX_SEARCH_CHARS, search_rows
from llmops.tracing.models import Span
from llmops.tracing.privacy import _blob_searches
from tests.support.otlp import request, span

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, LLM, OI, RETR, TOOL = (f"{i:016x}" for i in range(1, 6))
T0 = 1_700_000_000_000_000_000
CTX = DecodeContext("proj-1", "key-1", 10_000)


def _spans() -> list[dict[str, Any]]:
    return [
        span(TRACE, ROOT, "agent run", start=T0, attrs={"openinference.span.kind": "AGENT", "tag.tags": ["a", "b"]}),
        span(
            TRACE,
            LLM,
            "chat gpt-4o",
            parent=ROOT,
            start=T0 + 10,
            kind=3,
            attrs={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 11,
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi there"}]}]',
                "llmops.cost_usd": 0.25,
                "enduser.id": "ann",
                "llmops.tags": "b, c",
            },
        ),
        span(
            TRACE,
            OI,
            "ChatAnthropic",
            parent=ROOT,
            start=T0 + 20,
            attrs={
                "openinference.span.kind": "LLM",
                "llm.system": "anthropic",
                "llm.model_name": "claude-3-5-haiku",
                "llm.invocation_parameters": '{"model": "claude-req", "temperature": 0.1, "stop": "END"}',
                "llm.token_count.prompt": 7,
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "second",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "first",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "ok",
                "llm.finish_reason": "stop",
                "session.id": "s-1",
            },
        ),
        span(
            TRACE,
            RETR,
            "retrieve",
            parent=ROOT,
            start=T0 + 30,
            attrs={
                "openinference.span.kind": "RETRIEVER",
                "input.value": "revenue",
                "retrieval.documents.0.document.id": "d1",
                "retrieval.documents.0.document.score": 0.5,
                "retrieval.documents.0.document.content": "Revenue grew.",
            },
        ),
        span(
            TRACE,
            TOOL,
            "execute_tool",
            parent=ROOT,
            start=T0 + 40,
            status=(2, ""),
            attrs={
                "gen_ai.operation.name": "execute_tool",
                "tool.name": "search",
                "input.value": '{"q": "risk"}',
                "input.mime_type": "application/json",
                "error.type": "Timeout",
            },
        ),
    ]


def _rows() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[tuple[str, str, str, str]]]:
    decoded = decode_protobuf(request(_spans()).SerializeToString(), CTX)
    assert decoded.rejected == 0
    prepared = SqlTraceStore.prepare_rows(decoded.spans)
    by_id = {row[_SPAN_COLS.index("span_id")]: dict(zip(_SPAN_COLS, row, strict=True)) for row in prepared.spans}
    traces = [dict(zip(_TRACE_FIELDS, row, strict=True)) for row in prepared.traces]
    return by_id, traces, prepared.search


def test_span_rows_columns() -> None:
    """Columns of each kind of span: precedence of sources, invocation parameters, clipping of the operation."""
    rows = _rows()[0]
    llm, oi, retr, tool = rows[LLM], rows[OI], rows[RETR], rows[TOOL]
    assert [rows[ROOT][c] for c in ("kind", "operation", "parent_span_id", "project_id", "key_id")] == [
        "agent",
        None,
        None,
        "proj-1",
        "key-1",
    ]
    assert [llm[c] for c in ("kind", "operation", "provider", "request_model", "response_model")] == [
        "llm",
        "chat",
        "openai",
        "gpt-4o",
        None,
    ]
    assert (llm["input_tokens"], llm["output_tokens"], llm["cost_usd"], llm["user_id"]) == (11, 3, 0.25, "ann")
    # the requested model of llm.invocation_parameters outranks llm.model_name (the model that answered)
    assert (oi["request_model"], oi["response_model"], oi["provider"]) == (
        "claude-req",
        "claude-3-5-haiku",
        "anthropic",
    )
    assert (oi["input_tokens"], oi["output_tokens"], oi["session_id"]) == (7, None, "s-1")
    assert (retr["kind"], retr["operation"], tool["kind"], tool["status"], tool["error"]) == (
        "retrieval",
        None,
        "tool",
        "error",
        "Timeout",
    )


def test_span_rows_json_exactly() -> None:
    """The JSON columns byte for byte: attributes keep the sender's order, canonical names are appended after
    them in a fixed order, content moves to input/output."""
    rows = _rows()[0]
    oi = rows[OI]
    assert orjson.loads(oi["attributes"]) == {  # dict equality ignores order: the order is pinned below
        "openinference.span.kind": "LLM",
        "llm.system": "anthropic",
        "llm.model_name": "claude-3-5-haiku",
        "llm.invocation_parameters": '{"model": "claude-req", "temperature": 0.1, "stop": "END"}',
        "llm.token_count.prompt": 7,
        "llm.finish_reason": "stop",
        "session.id": "s-1",
        "gen_ai.request.model": "claude-req",
        "gen_ai.request.temperature": 0.1,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.response.model": "claude-3-5-haiku",
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.conversation.id": "s-1",
        "gen_ai.response.finish_reasons": ["stop"],
        "otel.scope.name": "tests.support.otlp",
        "resource": {"service.name": "tests"},
    }
    assert list(orjson.loads(oi["attributes"])) == [
        "openinference.span.kind",
        "llm.system",
        "llm.model_name",
        "llm.invocation_parameters",
        "llm.token_count.prompt",
        "llm.finish_reason",
        "session.id",
        "gen_ai.request.model",
        "gen_ai.request.temperature",
        "gen_ai.request.stop_sequences",
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.conversation.id",
        "gen_ai.response.finish_reasons",
        "otel.scope.name",
        "resource",
    ]
    assert oi["input"] == (
        '[{"role":"system","parts":[{"type":"text","content":"first"}]},'
        '{"role":"user","parts":[{"type":"text","content":"second"}]}]'
    )
    assert oi["output"] == '[{"role":"assistant","parts":[{"type":"text","content":"ok"}],"finish_reason":"stop"}]'
    assert rows[RETR]["output"] == '[{"id":"d1","score":0.5,"content":"Revenue grew."}]'
    assert rows[RETR]["input"] == '"revenue"'
    assert rows[TOOL]["input"] == '{"q":"risk"}'
    assert "input.mime_type" not in orjson.loads(rows[TOOL]["attributes"])
    assert orjson.loads(rows[TOOL]["attributes"])["gen_ai.tool.name"] == "search"
    assert rows[LLM]["attributes"].startswith('{"gen_ai.operation.name":"chat","gen_ai.system":"OpenAI",')
    assert rows[ROOT]["input"] is None and rows[ROOT]["output"] is None


def test_trace_and_search_rows() -> None:
    """One trace row aggregating the batch (root name, sums, first user/session/model, tags in order, error),
    and one full-text row for the trace with its spans' content in span order (message metadata left out)."""
    _, traces, search = _rows()
    assert traces == [
        {
            "trace_id": TRACE,
            "project_id": "proj-1",
            "name": "agent run",
            "start_ns": T0,
            "end_ns": T0 + 40 + 1_000_000,
            "status": "error",
            "user_id": "ann",
            "session_id": "s-1",
            "model": "gpt-4o",
            "key_id": "key-1",
            "input_tokens": 18,
            "output_tokens": 3,
            "cost_usd": 0.25,
            "span_count": 5,
            "tags": "\x1fa\x1fb\x1fc\x1f",
        }
    ]
    # ids, roles, types: not text
    assert search == [("proj-1", TRACE, LLM, "hi there\nfirst\nsecond\nok\nrevenue\nRevenue grew.\nrisk")]


def _text_span(trace: str, i: int, text: str | None, project: str = "p") -> Span:
    return Span(trace, f"{i:016x}", project, "n", "llm", 1, 2, input=text)


def test_search_rows_one_per_trace_within_the_size_cap() -> None:
    """Spans of two traces interleaved: one row per trace, texts in span order; a trace whose text passes
    MAX_SEARCH_CHARS continues in a new row (nothing dropped, no row over the cap)."""
    sp = _text_span
    big, other = "w" * (MAX_SEARCH_CHARS // 2), "v" * (MAX_SEARCH_CHARS // 2)
    batch = [
        sp("a", 1, "one"),
        sp("b", 2, "uno"),
        sp("a", 3, None),
        sp("a", 4, "two"),
        sp("b", 5, big),
        sp("b", 6, other),
        sp("b", 7, "fin"),
    ]
    rows = search_rows(batch)
    assert ("p", "a", f"{1:016x}", "one\ntwo") in rows
    b_rows = [r for r in rows if r[1] == "b"]
    assert all(len(r[3]) <= MAX_SEARCH_CHARS for r in rows)
    assert "\n".join(r[3] for r in b_rows).split("\n") == ["uno", big, other, "fin"]
    assert len(rows) == 3 and b_rows[0][2] == f"{2:016x}"


def test_search_rows_write_a_string_a_trace_repeats_once() -> None:
    """A chain's input passed on to its model call: FTS5 keeps a word once per document anyway, so the repeat
    is left out of the trace's row; another trace with the same text still gets it."""
    prompt = "summarise the quarterly report"
    rows = search_rows(
        [
            _text_span("a", 1, prompt),
            _text_span("a", 2, prompt),
            _text_span("a", 3, "an answer"),
            _text_span("a", 4, prompt),
            _text_span("b", 5, prompt),
        ]
    )
    assert sorted((r[1], r[3]) for r in rows) == [("a", f"{prompt}\nan answer"), ("b", prompt)]


def test_search_rows_never_mix_projects_sharing_a_trace_id() -> None:
    """The gateway's recorder writes batches holding several projects' calls, and a caller can send another
    project's trace id in traceparent: each project's text stays in its own row."""
    trace = "t" * 32
    rows = search_rows(
        [
            _text_span(trace, 1, "alpha", "a"),
            _text_span(trace, 2, "secret of b", "b"),
            _text_span(trace, 3, "more alpha", "a"),
        ]
    )
    assert sorted((r[0], r[3]) for r in rows) == [("a", "alpha\nmore alpha"), ("b", "secret of b")]


_bytes = st.binary(min_size=1, max_size=4).map(lambda b: bytes(97 + c % 4 for c in b))  # a-d: frequent overlaps


@given(st.lists(_bytes, min_size=1, max_size=8), st.binary(max_size=40).map(lambda b: bytes(97 + c % 5 for c in b)))
def test_grouped_trigger_search_finds_exactly_the_triggers(triggers: list[bytes], blob: bytes) -> None:
    """Property: the redactor's pre-check (triggers grouped by first byte into one regex each) reports a hit
    exactly when some trigger is a substring of the blob."""
    literals, patterns = _blob_searches(triggers)
    found = any(t in blob for t in literals) or any(p.search(blob) is not None for p in patterns)
    assert found == any(t in blob for t in triggers)


@pytest.mark.skipif(native is None, reason="native helpers not built")
@given(st.lists(_bytes, max_size=8), st.binary(max_size=40).map(lambda b: bytes(97 + c % 5 for c in b)))
def test_native_trigger_search_finds_exactly_the_triggers(triggers: list[bytes], blob: bytes) -> None:
    """Property: the native one-pass search (a bitmap of two-byte prefixes, memchr for one byte) reports a hit
    exactly when some trigger is a substring of the blob, at its very end too."""
    assert native is not None
    assert native.contains_any(blob, tuple(triggers)) == any(t in blob for t in triggers)


def test_spans_with_the_same_keys_are_mapped_by_their_own_values() -> None:
    """Per-key work is memoised per key set (a plan); values are still read per span: an empty best-ranked
    source falls through to the next one, and a later span with the same keys picks its own values."""
    keys = ("gen_ai.provider.name", "gen_ai.system", "llm.model_name", "llm.invocation_parameters")
    values = [("", "Vertex", "m1", '{"model": ""}'), ("Bedrock", "x", "m2", '{"model": "req"}'), ("a", "b", "", "{}")]
    spans = [
        span(TRACE, f"{i + 10:016x}", "chat", start=T0 + i, attrs=dict(zip(keys, v, strict=True)))
        for i, v in enumerate(values)
    ]
    decoded = decode_protobuf(request(spans).SerializeToString(), CTX)
    assert [(s.provider, s.request_model, s.response_model, s.kind) for s in decoded.spans] == [
        ("vertex", "m1", "m1", "llm"),
        ("bedrock", "req", "m2", "llm"),
        ("a", None, None, "llm"),
    ]
