"""The official openai SDK, unchanged, against the gateway on the embedded models (no fakes)."""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from tests.conftest import RunningServer


def test_sync_chat_completion_with_local_model(server: RunningServer) -> None:
    """A non-streamed completion from model `local` comes back in the OpenAI shape with usage."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    resp = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0
    )
    assert resp.object == "chat.completion"
    assert resp.model == "local"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert resp.usage is not None and resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0


def test_streaming_with_include_usage(server: RunningServer) -> None:
    """SSE streaming: role first, content deltas, a finish reason, then one usage-only chunk."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    chunks = list(
        client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "Count: one, two,"}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [finishes[-1]] and finishes[-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_usage_sends_no_usage_chunk(server: RunningServer) -> None:
    """Without include_usage the client gets no usage chunk (the gateway still records usage)."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    chunks = list(
        client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
        )
    )
    assert all(c.choices for c in chunks)
    server.flush()
    traces = server.client().get("/api/traces").json()["data"]
    assert traces[0]["output_tokens"] >= 1


async def test_async_client_and_json_schema_output(server: RunningServer) -> None:
    """The async SDK works, and json_schema output is grammar-constrained into valid JSON."""
    client = openai.AsyncOpenAI(base_url=server.v1, api_key=server.key)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    resp = await client.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Invent a person."}],
        max_tokens=48,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = json.loads(resp.choices[0].message.content or "")
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    await client.close()


def test_embeddings_from_local_embed(server: RunningServer) -> None:
    """384-dim unit vectors; paraphrases are closer than unrelated sentences; base64 decodes to floats."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    resp = client.embeddings.create(
        model="local-embed",
        input=["The cat sits on the mat.", "A cat is sitting on a mat.", "Stock markets fell sharply today."],
    )
    vecs = [d.embedding for d in resp.data]
    assert [len(v) for v in vecs] == [384, 384, 384]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731
    assert abs(dot(vecs[0], vecs[0]) - 1) < 1e-3
    assert dot(vecs[0], vecs[1]) > dot(vecs[0], vecs[2]) + 0.3
    assert resp.usage.prompt_tokens > 0
    b64 = client.embeddings.create(model="local-embed", input="hello", encoding_format="base64")
    raw = base64.b64decode(b64.data[0].embedding)  # type: ignore[arg-type]
    assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 384


def test_models_list_and_retrieve(server: RunningServer) -> None:
    """GET /v1/models lists the aliases; retrieving an unknown one is a 404 in the OpenAI envelope."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    ids = {m.id for m in client.models.list()}
    assert {"local", "local-embed"} <= ids
    assert client.models.retrieve("local").id == "local"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_every_call_is_recorded_with_genai_attributes(server: RunningServer) -> None:
    """A call becomes a trace with one span carrying gen_ai.* attributes, tokens, latency, cost 0 (local)."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    raw = client.chat.completions.with_raw_response.create(
        model="local",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=5,
        temperature=0.5,
        user="alice",
        extra_headers={"x-llmops-session": "sess-1"},
    )
    resp = raw.parse()
    trace_id = raw.headers["x-llmops-trace-id"]
    assert raw.headers["x-llmops-deployment"] == "local#1:local"
    server.flush()
    trace = server.client().get(f"/api/traces/{trace_id}").json()
    assert trace["user_id"] == "alice" and trace["session_id"] == "sess-1"
    span = trace["spans"][0]
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "llama_cpp"
    assert attrs["gen_ai.request.model"] == "local"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert attrs["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens  # type: ignore[union-attr]
    assert attrs["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens  # type: ignore[union-attr]
    assert attrs["gen_ai.response.finish_reasons"] == [resp.choices[0].finish_reason]
    assert attrs["gen_ai.conversation.id"] == "sess-1"
    assert span["cost_usd"] == 0.0 and span["duration_ms"] > 0
    assert span["input"][0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
    assert span["output"][0]["parts"][0]["content"] == resp.choices[0].message.content


def test_traceparent_joins_the_callers_trace(server: RunningServer) -> None:
    """A W3C traceparent makes the gateway span a child of the caller's span in the caller's trace."""
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    client = openai.OpenAI(base_url=server.v1, api_key=server.key)
    client.embeddings.create(
        model="local-embed", input="x", extra_headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    server.flush()
    trace = server.client().get(f"/api/traces/{trace_id}").json()
    assert trace["spans"][0]["parent_span_id"] == parent
    assert trace["spans"][0]["attributes"]["gen_ai.operation.name"] == "embeddings"
