"""The anthropic provider through the gateway, against the fake upstream's Messages API."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import RunningServer
from tests.support.fake_upstream import FakeUpstream

MSG = [{"role": "system", "content": "Be short."}, {"role": "user", "content": "hello claude"}]


@pytest.fixture
def claude(fake_upstream: FakeUpstream, server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    cfg = {
        "models": [
            {
                "name": "claude",
                "deployments": [
                    {
                        "provider": "anthropic",
                        "base_url": fake_upstream.base_url,
                        "api_key": "ant-secret",
                        "model": "claude-3-5-haiku-latest",
                        "timeout_s": 2,
                    }
                ],
            },
            {
                "name": "claude-then-openai",
                "deployments": [
                    {"provider": "anthropic", "base_url": fake_upstream.base_url, "model": "claude-3-5-haiku-latest"},
                    {"provider": "openai", "base_url": fake_upstream.base_url + "/v1", "model": "backup"},
                ],
            },
        ],
        "router": {"retries": 0},
    }
    return server_factory(cfg)


def test_non_streaming_translation_both_ways(claude: RunningServer, fake_upstream: FakeUpstream) -> None:
    client = openai.OpenAI(base_url=claude.v1, api_key=claude.key, max_retries=0)
    resp = client.chat.completions.create(model="claude", messages=MSG, max_tokens=50)
    assert resp.choices[0].message.content == "echo: hello claude"
    assert resp.choices[0].finish_reason == "stop"
    sent = fake_upstream.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "ant-secret" and sent.headers["anthropic-version"]
    assert sent.json["system"] == "Be short." and sent.json["max_tokens"] == 50
    assert (
        sent.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello claude"}]}]
        or sent.json["messages"][0]["role"] == "user"
    )
    claude.flush()
    span = (
        claude.client()
        .get(f"/api/traces/{claude.client().get('/api/traces').json()['data'][0]['trace_id']}")
        .json()["spans"][0]
    )
    assert span["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert span["cost_usd"] is not None and span["cost_usd"] > 0


def test_tool_calls_come_back_in_openai_shape(claude: RunningServer) -> None:
    client = openai.OpenAI(base_url=claude.v1, api_key=claude.key, max_retries=0)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    resp = client.chat.completions.create(model="claude", messages=MSG, tools=tools)
    assert resp.choices[0].finish_reason == "tool_calls"
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup" and isinstance(json.loads(call.function.arguments), dict)  # type: ignore[union-attr]


def test_streaming_with_usage_and_tools(claude: RunningServer) -> None:
    client = openai.OpenAI(base_url=claude.v1, api_key=claude.key, max_retries=0)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=MSG, tools=tools, stream=True, stream_options={"include_usage": True}
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "lookup"  # type: ignore[union-attr]
    assert isinstance(json.loads("".join(tc.function.arguments or "" for tc in calls)), dict)  # type: ignore[union-attr]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


def test_streaming_text(claude: RunningServer) -> None:
    client = openai.OpenAI(base_url=claude.v1, api_key=claude.key, max_retries=0)
    chunks = list(client.chat.completions.create(model="claude", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello claude"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_overloaded_anthropic_falls_back_to_openai(claude: RunningServer, fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue("status:code=529")
    raw = openai.OpenAI(
        base_url=claude.v1, api_key=claude.key, max_retries=0
    ).chat.completions.with_raw_response.create(model="claude-then-openai", messages=MSG)
    assert raw.headers["x-llmops-deployment"].endswith(":openai")


def test_broken_anthropic_stream_ends_in_error(claude: RunningServer, fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue("reset_after:chunks=1")
    stream = openai.OpenAI(base_url=claude.v1, api_key=claude.key, max_retries=0).chat.completions.create(
        model="claude", messages=MSG, stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
