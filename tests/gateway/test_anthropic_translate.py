"""The OpenAI ⇄ Anthropic Messages translation functions (pure; no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.gateway.providers._anthropic_translate import (
    JSON_ONLY_INSTRUCTION,
    PLACEHOLDER_USER_TEXT,
    AnthropicStreamError,
    AnthropicStreamTranslator,
    TranslationError,
    from_anthropic_response,
    to_anthropic_request,
)

MODEL = "claude-sonnet-4-5"
CREATED = 1_700_000_000
HI = [{"role": "user", "content": "hi"}]


def _req(**body: Any) -> dict[str, Any]:
    return to_anthropic_request(body, model=MODEL)


def _anthropic_message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


# ------------------------------------------------------------------------------------------- requests


def test_system_and_developer_messages_merge_into_top_level_system() -> None:
    """system/developer messages (strings or text parts, anywhere) → one system string joined by blank lines."""
    out = _req(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "   "},
        ],
        max_tokens=64,
    )
    assert out == {
        "model": MODEL,
        "max_tokens": 64,
        "system": "Be terse.\n\nUse metric units.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


def test_no_system_key_without_system_messages_and_default_max_tokens() -> None:
    """Without system messages there is no `system` key; max_tokens falls back to the default."""
    out = to_anthropic_request({"messages": HI}, model=MODEL, default_max_tokens=321)
    assert "system" not in out
    assert out["max_tokens"] == 321
    assert _req(messages=HI, max_tokens=7, max_completion_tokens=9)["max_tokens"] == 9


def test_sampling_fields_stop_stream_user_and_unknown_fields() -> None:
    """temperature is clamped to [0,1]; top_p, stop, stream, user map across; unknown fields are ignored."""
    out = _req(messages=HI, temperature=1.7, top_p=0.9, stop="END", stream=True, user="u-1", seed=3, logit_bias={})
    assert out["temperature"] == 1
    assert out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "u-1"}
    assert "seed" not in out and "logit_bias" not in out
    assert _req(messages=HI, temperature=-0.5)["temperature"] == 0
    assert _req(messages=HI, temperature=0.3)["temperature"] == 0.3
    assert _req(messages=HI, stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_image_parts_become_base64_or_url_image_blocks() -> None:
    """image_url parts: data: URLs → base64 source, http(s) URLs → url source, text parts kept in order."""
    out = _req(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_tools_tool_choice_and_parallel_tool_calls() -> None:
    """Function tools → name/description/input_schema; every tool_choice form and parallel_tool_calls=false."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    out = _req(messages=HI, tools=tools)
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out
    cases: list[tuple[Any, Any, dict[str, Any]]] = [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "now"}}, None, {"type": "tool", "name": "now"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ]
    for choice, parallel, expected in cases:
        body: dict[str, Any] = {"messages": HI, "tools": tools, "tool_choice": choice}
        if parallel is not None:
            body["parallel_tool_calls"] = parallel
        assert to_anthropic_request(body, model=MODEL)["tool_choice"] == expected, (choice, parallel)
    assert "tool_choice" not in _req(messages=HI, tool_choice="auto")  # no tools → no tool_choice


def test_response_format_appends_json_instruction_to_system() -> None:
    """json_object / json_schema → a JSON-only instruction (with the schema) appended to the system prompt."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    out = _req(
        messages=[{"role": "system", "content": "Be terse."}, *HI],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert out["system"].startswith("Be terse.\n\n" + JSON_ONLY_INSTRUCTION)
    assert json.dumps(schema) in out["system"]
    assert _req(messages=HI, response_format={"type": "json_object"})["system"] == JSON_ONLY_INSTRUCTION
    assert "system" not in _req(messages=HI, response_format={"type": "text"})


def test_tool_round_trip_openai_to_anthropic_and_back() -> None:
    """assistant tool_calls → tool_use blocks, consecutive tool results → one user turn of tool_result blocks
    (before the user's follow-up text); an Anthropic tool_use reply comes back as OpenAI tool_calls."""
    calls = [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]
    out = _req(
        messages=[
            {"role": "user", "content": "weather and time?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "4°C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather and time?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12:00"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    reply = _anthropic_message(
        [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_3", "name": "get_weather", "input": {"city": "Bergen"}},
        ],
        stop_reason="tool_use",
    )
    choice = from_anthropic_response(reply, created=CREATED)["choices"][0]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_3",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Bergen"})},
                }
            ],
        },
        "finish_reason": "tool_calls",
    }
    # feeding the reply back in reproduces the tool_use block
    back = _req(messages=[*HI, choice["message"]])
    assert back["messages"][1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_3",
        "name": "get_weather",
        "input": {"city": "Bergen"},
    }


def test_conversation_starting_with_assistant_gets_placeholder_user_turn() -> None:
    """Anthropic needs a user turn first: an assistant-first conversation is prefixed with a placeholder."""
    out = _req(messages=[{"role": "system", "content": "s"}, {"role": "assistant", "content": "Hello!"}, *HI])
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"] == [{"type": "text", "text": PLACEHOLDER_USER_TEXT}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HI, "n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "messages"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
            "messages",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}
                ]
            },
            "messages",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "messages",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
        ({"messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"messages": HI, "max_completion_tokens": "9"}, "max_completion_tokens"),
        ({"messages": HI, "temperature": "hot"}, "temperature"),
        ({"messages": HI, "top_p": True}, "top_p"),
        ({"messages": HI, "stop": [1]}, "stop"),
        ({"messages": HI, "stream": "yes"}, "stream"),
        ({"messages": HI, "tools": [{"type": "code_interpreter"}]}, "tools"),
        ({"messages": HI, "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": HI, "tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
        ({"messages": HI, "response_format": {"type": "xml"}}, "response_format"),
    ],
)
def test_translation_errors_name_the_offending_field(body: dict[str, Any], param: str) -> None:
    """Requests Anthropic cannot express raise TranslationError (a ValueError) whose param names the field."""
    with pytest.raises(TranslationError) as info:
        to_anthropic_request(body, model=MODEL)
    assert info.value.param == param
    assert isinstance(info.value, ValueError) and str(info.value)


# ------------------------------------------------------------------------------------------ responses


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_finish_reasons_table(stop_reason: str | None, finish_reason: str) -> None:
    """Every Anthropic stop_reason maps to its OpenAI finish_reason, non-streaming and streaming alike."""
    resp = _anthropic_message([{"type": "text", "text": "x"}], stop_reason=stop_reason)  # type: ignore[arg-type]
    assert from_anthropic_response(resp, created=CREATED)["choices"][0]["finish_reason"] == finish_reason
    tr = AnthropicStreamTranslator(created=CREATED, include_usage=False)
    (chunk,) = tr.feed("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason}})
    assert chunk["choices"][0]["finish_reason"] == finish_reason


def test_text_response_envelope_and_usage_with_cache_tokens() -> None:
    """The chat.completion envelope; prompt_tokens includes cache reads and writes, cached_tokens = cache reads."""
    resp = _anthropic_message(
        [{"type": "text", "text": "Hello"}, {"type": "text", "text": ", world"}],
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    assert from_anthropic_response(resp, created=CREATED) == {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 130,
            "completion_tokens": 5,
            "total_tokens": 135,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
    }


def test_response_without_text_has_null_content_and_null_cache_fields_count_zero() -> None:
    """Only tool_use blocks → content None; cache fields that are null or absent count as 0."""
    resp = _anthropic_message(
        [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        "tool_use",
        cache_read_input_tokens=None,  # type: ignore[arg-type]
    )
    out = from_anthropic_response(resp, created=CREATED)
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


# ------------------------------------------------------------------------------------------ streaming


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": None,
    }


def _feed_all(tr: AnthropicStreamTranslator, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [chunk for event, data in events for chunk in tr.feed(event, {"type": event, **data})]


MESSAGE_START: tuple[str, dict[str, Any]] = (
    "message_start",
    {
        "message": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "cache_read_input_tokens": 8, "output_tokens": 1},
        }
    },
)


def test_streaming_text_sequence_becomes_exact_chunks_with_usage() -> None:
    """A text stream → role chunk, content chunks, finish chunk, then (include_usage) one usage chunk."""
    tr = AnthropicStreamTranslator(created=CREATED, include_usage=True)
    chunks = _feed_all(
        tr,
        [
            MESSAGE_START,
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {}),
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            ("content_block_stop", {"index": 0}),
            (
                "message_delta",
                {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}},
            ),
            ("some_future_event", {"x": 1}),
        ],
    )
    assert not tr.finished
    chunks += tr.feed("message_stop", {"type": "message_stop"})
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 6,
        "total_tokens": 26,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    assert chunks == [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({}, "stop"),
        {
            "id": "chatcmpl-msg_01",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": usage,
        },
    ]
    assert tr.finished
    assert tr.usage == usage


def test_streaming_tool_calls_use_tool_ordinals_and_no_usage_chunk_when_not_asked() -> None:
    """tool_use blocks → tool_calls deltas indexed by tool ordinal (not block index); a tool with no argument
    text gets "{}"; without include_usage no usage chunk is emitted but .usage is still known."""
    tr = AnthropicStreamTranslator(created=CREATED, include_usage=False)
    chunks = _feed_all(
        tr,
        [
            MESSAGE_START,
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
            ("content_block_stop", {"index": 0}),
            (
                "content_block_start",
                {
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}},
                },
            ),
            ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
            ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}}),
            ("content_block_stop", {"index": 1}),
            (
                "content_block_start",
                {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}}},
            ),
            ("content_block_stop", {"index": 2}),
            ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
            ("message_stop", {}),
        ],
    )
    assert chunks == [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Checking."}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "now", "arguments": ""}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        _chunk({}, "tool_calls"),
    ]
    assert tr.finished
    assert tr.usage is not None and tr.usage["completion_tokens"] == 30 and tr.usage["prompt_tokens"] == 20


def test_stream_error_event_raises_with_message_and_type() -> None:
    """An in-band `error` event raises AnthropicStreamError carrying Anthropic's message and error type."""
    tr = AnthropicStreamTranslator(created=CREATED, include_usage=True)
    tr.feed(*MESSAGE_START)
    with pytest.raises(AnthropicStreamError) as info:
        tr.feed("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded" and str(info.value) == "Overloaded"
    assert not tr.finished


# ------------------------------------------------------------------------------------------- property

_ROLES = st.sampled_from(["user", "assistant"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ROLES, st.text(max_size=20)), min_size=1, max_size=12))
def test_plain_text_conversations_always_alternate_and_keep_all_text(turns: list[tuple[str, str]]) -> None:
    """For any list of plain-text user/assistant messages, the Anthropic messages strictly alternate starting
    with user, and every non-blank text survives in order (the only addition being the leading placeholder
    when the conversation would not start with a user turn; blank texts, which Anthropic rejects, are dropped)."""
    out = _req(messages=[{"role": role, "content": text} for role, text in turns])
    roles = [m["role"] for m in out["messages"]]
    assert roles[0] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    pairs = [(m["role"], block["text"]) for m in out["messages"] for block in m["content"]]
    kept = [(role, text) for role, text in turns if text.strip()]
    if not kept or kept[0][0] != "user":
        assert pairs[0] == ("user", PLACEHOLDER_USER_TEXT)
        pairs = pairs[1:]
    assert pairs == kept  # same texts, same order, each still in its original role
