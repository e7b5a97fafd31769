"""The fake upstream speaks real HTTP that httpx and the official openai SDK accept, and breaks on demand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.support.fake_upstream import FakeUpstream, Fault, serve_fake_upstream

MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
CHAT = {"model": "m", "messages": MSG}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture(scope="module")
def http_client(server: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def sdk_client(server: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0, timeout=5) as client:
        yield client


@pytest.fixture
def http(fake: FakeUpstream, http_client: httpx.Client) -> httpx.Client:
    return http_client


@pytest.fixture
def sdk(fake: FakeUpstream, sdk_client: openai.OpenAI) -> openai.OpenAI:
    return sdk_client


def _sse_data(resp: httpx.Response) -> list[str]:
    return [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]


def test_fault_grammar() -> None:
    assert Fault.parse("status:code=429,retry_after=2") == Fault("status", {"code": 429, "retry_after": 2})
    assert Fault.parse("status=500") == Fault("status", {"code": 500})
    assert Fault.parse("reset_before_first") == Fault("reset_before_first")
    with pytest.raises(ValueError):
        Fault.parse("explode")


def test_ok_non_stream_parses_with_sdk(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    resp = sdk.chat.completions.create(model="gpt-x", messages=MSG)
    assert resp.choices[0].message.content == "echo: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (2, 3)
    [rec] = fake.requests
    assert (rec.method, rec.path, rec.json) == ("POST", "/v1/chat/completions", {"model": "gpt-x", "messages": MSG})
    assert rec.headers["authorization"] == "Bearer x"


def test_ok_stream_with_usage_parses_with_sdk(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.create(
        model="m", messages=MSG, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


def test_raw_stream_framing(http: httpx.Client) -> None:
    with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        data = _sse_data(resp)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"  # no usage chunk unless asked


def test_tools_json_format_and_models(sdk: openai.OpenAI, http: httpx.Client) -> None:
    tools: list[ChatCompletionToolParam] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    resp = sdk.chat.completions.create(model="m", messages=MSG, tools=tools)
    [call] = resp.choices[0].message.tool_calls or []
    assert call.type == "function" and resp.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")
    plain = sdk.chat.completions.create(model="m", messages=MSG, tools=tools, tool_choice="none")
    assert plain.choices[0].message.content == "echo: hello there"
    fmt = sdk.chat.completions.create(model="m", messages=MSG, response_format={"type": "json_object"})
    assert json.loads(fmt.choices[0].message.content or "") == {"echo": "hello there"}
    assert [m.id for m in sdk.models.list()] == ["fake-model"]


def test_embeddings_are_deterministic(sdk: openai.OpenAI, http: httpx.Client) -> None:
    a = sdk.embeddings.create(model="e", input=["one", "two"])
    b = http.post("/v1/embeddings", json={"model": "e", "input": "one", "dimensions": 4}).json()
    assert len(a.data) == 2 and len(a.data[0].embedding) == 8
    assert a.data[0].embedding != a.data[1].embedding
    again = sdk.embeddings.create(model="e", input=["one"])
    assert again.data[0].embedding == pytest.approx(a.data[0].embedding, abs=1e-6)
    assert len(b["data"][0]["embedding"]) == 4 and b["usage"]["prompt_tokens"] == 1


def test_status_429_with_retry_after(http: httpx.Client, sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.enqueue("status:code=429,retry_after=2")
    resp = http.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
    assert resp.json()["error"].keys() == {"message", "type", "param", "code"}
    fake.enqueue("status:code=400,context=1")
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="m", messages=MSG)
    assert err.value.code == "context_length_exceeded"


def test_enqueue_is_fifo_then_model_name_then_ok(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.enqueue("status:code=500", "status:code=503")
    fake.enqueue("status:code=429")
    codes = [http.post("/v1/chat/completions", json=CHAT).status_code for _ in range(4)]
    assert codes == [500, 503, 429, 200]
    assert http.post("/v1/chat/completions", json={**CHAT, "model": "fault:status=502"}).status_code == 502
    assert http.post("/v1/chat/completions", json={**CHAT, "model": "fault:bogus"}).status_code == 400
    fake.enqueue("status:code=500")
    fake.reset()
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert len(fake.requests) == 1


def test_reset_after_breaks_sdk_stream_after_k_chunks(sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.enqueue("reset_after:chunks=2")
    seen = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        with sdk.chat.completions.create(model="m", messages=MSG, stream=True) as stream:
            for chunk in stream:
                seen.append(chunk)
    assert len(seen) == 2


def test_reset_after_non_stream_cuts_the_body(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.enqueue("reset_after")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/chat/completions", json=CHAT)


def test_reset_before_first_is_a_connection_error(http: httpx.Client, sdk: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.enqueue("reset_before_first", "reset_before_first")
    with pytest.raises(httpx.TransportError):
        http.post("/v1/chat/completions", json=CHAT)
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="m", messages=MSG)
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200  # the server lives on


def test_max_concurrency_counts_parallel_requests(fake: FakeUpstream) -> None:
    def call(_: int) -> int:
        with httpx.Client(base_url=fake.base_url, timeout=5) as client:
            body = {**CHAT, "model": "fault:latency:ms=300"}
            return client.post("/v1/chat/completions", json=body).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(call, range(4))) == [200] * 4
    assert fake.max_concurrency == 4
    assert 0.3 <= time.monotonic() - started < 1.5
    fake.reset()
    assert fake.max_concurrency == 0


def test_stream_faults(http: httpx.Client, fake: FakeUpstream) -> None:
    def run(fault: str, **extra: object) -> list[str]:
        fake.enqueue(fault)
        with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True, **extra}) as resp:
            assert resp.status_code == 200
            return _sse_data(resp)

    inband = run("inband_error")
    assert "error" in json.loads(inband[-1]) and len(inband) == 3
    assert run("no_done")[-1] != "[DONE]"
    assert "{not json" in run("malformed_json")
    no_usage = run("usage_missing", stream_options={"include_usage": True})
    assert all(json.loads(d).get("usage") is None for d in no_usage[:-1])
    slow = run("slow_stream:chunks=4,gap_ms=10")
    assert sum(1 for d in slow[:-1] if json.loads(d)["choices"][0]["delta"].get("content")) == 4


def test_ttft_and_hang(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.enqueue("ttft:ms=300", "hang_after:chunks=1")
    started = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as resp:
        headers_at = time.monotonic() - started
        lines = resp.iter_lines()
        next(lines)
        first_at = time.monotonic() - started
    assert headers_at < 0.25 <= first_at
    short = httpx.Timeout(5, read=0.3)
    with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=short) as resp:
        with pytest.raises(httpx.ReadTimeout):
            for _ in resp.iter_lines():
                pass


def test_require_key(fake: FakeUpstream) -> None:
    with serve_fake_upstream(require_key="sekret") as guarded, httpx.Client(base_url=guarded.base_url) as client:
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 401
        ok = client.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sekret"})
        assert ok.status_code == 200
        anth = client.post("/v1/messages", json=CHAT, headers={"x-api-key": "nope"})
        assert anth.status_code == 401 and anth.json()["error"]["type"] == "authentication_error"
        assert guarded.requests[-1].headers["x-api-key"] == "nope"


def test_anthropic_message_and_tool_use(http: httpx.Client) -> None:
    body = {"model": "claude-x", "max_tokens": 50, "system": "be nice", "messages": MSG}
    msg = http.post("/v1/messages", json=body).json()
    assert msg["type"] == "message" and msg["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert (msg["stop_reason"], msg["usage"]) == ("end_turn", {"input_tokens": 4, "output_tokens": 3})
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    tool = http.post("/v1/messages", json={**body, "tools": tools}).json()
    assert tool["stop_reason"] == "tool_use" and [b["type"] for b in tool["content"]] == ["text", "tool_use"]
    assert (tool["content"][1]["name"], tool["content"][1]["input"]) == ("lookup", {"q": 1})


def _anthropic_events(http: httpx.Client, body: dict[str, object]) -> tuple[list[str], list[dict[str, Any]]]:
    with http.stream("POST", "/v1/messages", json={**body, "stream": True}) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        frames = [f.split("\n") for f in resp.read().decode().strip().split("\n\n")]
    kinds = [f[0].removeprefix("event: ") for f in frames]
    datas = [json.loads(f[1].removeprefix("data: ")) for f in frames]
    assert all(d["type"] == k for d, k in zip(datas, kinds, strict=True))
    return kinds, datas


def test_anthropic_stream_event_sequence(http: httpx.Client) -> None:
    body = {"model": "claude-x", "max_tokens": 50, "messages": MSG}
    kinds, datas = _anthropic_events(http, body)
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert datas[0]["message"]["content"] == [] and datas[0]["message"]["stop_reason"] is None
    assert "".join(d["delta"]["text"] for d in datas[3:6]) == "echo: hello there"
    assert datas[-2]["delta"]["stop_reason"] == "end_turn" and datas[-2]["usage"]["output_tokens"] == 3


def test_anthropic_stream_with_tool_use(http: httpx.Client) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    kinds, datas = _anthropic_events(http, {"model": "claude-x", "max_tokens": 50, "messages": MSG, "tools": tools})
    assert kinds[6:] == [
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert datas[7]["content_block"] == {
        "type": "tool_use",
        "id": datas[7]["content_block"]["id"],
        "name": "lookup",
        "input": {},
    }
    assert json.loads("".join(d["delta"]["partial_json"] for d in datas[8:10])) == {"q": 1}
    assert datas[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_faults(http: httpx.Client, fake: FakeUpstream) -> None:
    body = {"model": "claude-x", "max_tokens": 50, "messages": MSG}
    fake.enqueue("status:code=529", "status:code=429,retry_after=1", "reset_before_first", "reset_after:chunks=1")
    overloaded = http.post("/v1/messages", json=body)
    assert overloaded.status_code == 529 and overloaded.json()["error"]["type"] == "overloaded_error"
    limited = http.post("/v1/messages", json=body)
    assert limited.json()["error"]["type"] == "rate_limit_error" and limited.headers["retry-after"] == "1"
    with pytest.raises(httpx.TransportError):
        http.post("/v1/messages", json=body)
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/v1/messages", json={**body, "stream": True}) as resp:
            resp.read()
