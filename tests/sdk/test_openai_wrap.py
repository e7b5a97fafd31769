"""``llmops.wrap_openai`` with the real ``openai`` client against the fake provider (real HTTP on loopback)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import llmops
from llmops.core.ids import parse_traceparent
from tests.sdk.conftest import Recorded, parent_id, span_id
from tests.support.fake_upstream import FakeUpstream

USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def _client(fake: FakeUpstream, **kw: Any) -> openai.OpenAI:
    return llmops.wrap_openai(openai.OpenAI(base_url=fake.base_url + "/v1", api_key="k", max_retries=0), **kw)


def _async_client(fake: FakeUpstream) -> openai.AsyncOpenAI:
    return llmops.wrap_openai(openai.AsyncOpenAI(base_url=fake.base_url + "/v1", api_key="k", max_retries=0))


def test_chat_call_is_a_genai_client_span(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """A completion becomes a CLIENT span ``chat {model}`` under the current span, with the GenAI request,
    response and usage attributes and the messages in the parts format."""
    client = _client(fake_upstream)
    with llmops.span("app"):
        resp = client.chat.completions.create(
            model="gpt-test", messages=USER, max_tokens=16, temperature=0.2, stop="\n", seed=7
        )
    span, app = sdk.one("chat gpt-test"), sdk.one("app")
    attrs = dict(span.attributes or {})
    assert span.kind is SpanKind.CLIENT and parent_id(span) == span_id(app)
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.provider.name"] == "openai"
    assert attrs["llmops.span.kind"] == "llm" and attrs["openinference.span.kind"] == "LLM"
    assert attrs["gen_ai.request.model"] == "gpt-test" and attrs["gen_ai.request.max_tokens"] == 16
    assert attrs["gen_ai.request.temperature"] == 0.2 and attrs["gen_ai.request.seed"] == 7
    assert list(attrs["gen_ai.request.stop_sequences"]) == ["\n"]
    assert attrs["gen_ai.response.id"] == resp.id and attrs["gen_ai.response.model"] == "gpt-test"
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert resp.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens
    assert attrs["server.address"] == "127.0.0.1" and isinstance(attrs["server.port"], int)
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "hello there"}]},
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "echo: hello there"}], "finish_reason": "stop"}
    ]


def test_tool_calls_and_definitions(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """Tool definitions are recorded; a tool-call answer becomes a ``tool_call`` part with parsed arguments,
    and a tool result in the history a ``tool_call_response`` part."""
    client = _client(fake_upstream)
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("c1", '{"q": 1}')]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    client.chat.completions.create(model="m", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    attrs = sdk.attrs("chat m")
    assert json.loads(attrs["gen_ai.tool.definitions"]) == TOOLS
    inputs = json.loads(attrs["gen_ai.input.messages"])
    assert inputs[2]["parts"] == [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": 1}}]
    assert inputs[3]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "42"}]
    (output,) = json.loads(attrs["gen_ai.output.messages"])
    assert output["finish_reason"] == "tool_calls"
    assert output["parts"][0]["type"] == "tool_call" and output["parts"][0]["name"] == "lookup"
    assert output["parts"][0]["arguments"] == {}


def _call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": arguments}}


def test_stream_span_ends_with_the_stream(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """A streamed call's span ends when the stream is exhausted: chunks pass through unchanged, and the span
    has the joined text, finish reason, usage (when asked for) and time to first chunk."""
    client = _client(fake_upstream)
    stream = client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    assert sdk.spans() == []  # not ended while the caller has not read the stream
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    attrs = sdk.attrs("chat m")
    assert attrs["gen_ai.request.stream"] is True
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": text}]
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert attrs["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens  # type: ignore[union-attr]
    assert attrs["gen_ai.response.time_to_first_chunk"] >= 0
    assert "llmops.closed_early" not in attrs


def test_stream_closed_early_and_streamed_tool_calls(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """Leaving a ``with`` stream early ends its span flagged ``llmops.closed_early``; streamed tool-call
    fragments are joined into one ``tool_call`` part."""
    client = _client(fake_upstream)
    with client.chat.completions.create(model="early", messages=USER, stream=True) as stream:
        next(iter(stream))
    assert sdk.attrs("chat early")["llmops.closed_early"] is True
    list(client.chat.completions.create(model="tools", messages=USER, tools=TOOLS, stream=True))  # type: ignore[arg-type]
    (output,) = json.loads(sdk.attrs("chat tools")["gen_ai.output.messages"])
    assert output["finish_reason"] == "tool_calls"
    assert [(p["type"], p["name"], p["arguments"]) for p in output["parts"]] == [("tool_call", "lookup", {})]


def test_http_error_is_recorded_and_reraised(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """A provider error reaches the caller as the openai exception it always was; the span is ERROR with
    ``error.type`` and the HTTP status."""
    client = _client(fake_upstream)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fault:status:code=500", messages=USER)
    span = sdk.one("chat fault:status:code=500")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "openai.InternalServerError"
    assert (span.attributes or {})["http.response.status_code"] == 500


def test_in_band_stream_error_fails_the_span(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """An error frame in the middle of a stream raises to the consumer and ends the span ERROR, keeping the
    text received before it."""
    client = _client(fake_upstream)
    fake_upstream.enqueue("inband_error")
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="m", messages=USER, stream=True))
    span = sdk.one("chat m")
    assert span.status.status_code is StatusCode.ERROR
    assert "gen_ai.output.messages" in (span.attributes or {})


def test_embeddings_span(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """Embeddings: ``embeddings {model}`` with the input, dimensions and input token usage."""
    client = _client(fake_upstream)
    client.embeddings.create(model="emb", input=["one two", "three"], dimensions=8)
    attrs = sdk.attrs("embeddings emb")
    assert attrs["gen_ai.operation.name"] == "embeddings" and attrs["llmops.span.kind"] == "embedding"
    assert json.loads(attrs["input.value"]) == ["one two", "three"]
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert attrs["gen_ai.usage.input_tokens"] == 3
    assert "gen_ai.usage.output_tokens" not in attrs


async def test_async_client_calls_and_streams(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """The async client is traced the same way, streams included, nested under the awaiting span."""
    client = _async_client(fake_upstream)
    async with llmops.span("agent"):
        await client.chat.completions.create(model="a1", messages=USER)
        stream = await client.chat.completions.create(model="a2", messages=USER, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: hello there"
    agent = sdk.one("agent")
    assert parent_id(sdk.one("chat a1")) == parent_id(sdk.one("chat a2")) == span_id(agent)
    assert json.loads(sdk.attrs("chat a2")["gen_ai.output.messages"])[0]["parts"][0]["content"] == text
    await client.close()


def test_capture_content_off_and_wrapping_twice(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """``capture_content=False`` keeps messages off (usage stays); wrapping twice still gives one span."""
    client = _client(fake_upstream, capture_content=False)
    assert llmops.wrap_openai(client) is client
    client.chat.completions.create(model="m", messages=USER)
    attrs = sdk.attrs("chat m")
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert attrs["gen_ai.usage.input_tokens"] > 0


def test_gateway_calls_carry_the_trace_context_instead_of_a_span(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """Pointed at the gateway, a wrapped client records no span of its own; the request carries the current
    span as ``traceparent`` (plus user and session), and headers the caller passes still win."""
    client = _client(fake_upstream, gateway=True)
    with llmops.span("app", user_id="u9", session_id="s9") as app:
        client.chat.completions.create(model="m", messages=USER)
        client.chat.completions.create(model="m", messages=USER, extra_headers={"x-llmops-user": "override"})
    first, second = (r.headers for r in fake_upstream.requests)
    assert parse_traceparent(first["traceparent"]) == (app.trace_id, app.span_id)
    assert first["x-llmops-user"] == "u9" and first["x-llmops-session"] == "s9"
    assert second["x-llmops-user"] == "override"
    assert [s.name for s in sdk.spans()] == ["app"]


def test_unwrapped_client_propagates_with_trace_headers(sdk: Recorded, fake_upstream: FakeUpstream) -> None:
    """An unwrapped client passes ``extra_headers=llmops.trace_headers()`` to nest the gateway's span."""
    client = openai.OpenAI(base_url=fake_upstream.base_url + "/v1", api_key="k", max_retries=0)
    with llmops.span("app") as app:
        client.chat.completions.create(model="m", messages=USER, extra_headers=llmops.trace_headers())
    (request,) = fake_upstream.requests
    assert parse_traceparent(request.headers["traceparent"]) == (app.trace_id, app.span_id)
