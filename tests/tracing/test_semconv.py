"""The one mapping module (``llmops.tracing.semconv``): what senders emit becomes canonical columns and
``gen_ai.*`` attributes, and nothing a sender set is lost."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops.tracing.models import Span
from llmops.tracing.semconv import build_span, unflatten

TRACE, SPAN, PARENT = "ab" * 16, "cd" * 8, "ef" * 8


def _span(attrs: dict[str, Any], *, status: tuple[int, str] = (0, ""), **kw: Any) -> Span:
    return build_span(
        project_id="p",
        key_id="k",
        ids=(TRACE, SPAN, PARENT),
        name=kw.pop("name", "op"),
        start_ns=1_000,
        end_ns=2_000,
        status=status,
        otel_kind=kw.pop("otel_kind", 1),
        attrs=dict(attrs),
        **kw,
    )


def test_otel_genai_span_fills_columns_and_parses_messages() -> None:
    """Current OTel GenAI attributes: columns filled, JSON message attributes moved to input/output."""
    s = _span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "OpenAI",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": "5",
            "gen_ai.conversation.id": "conv-1",
            "enduser.id": "ann",
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
            "gen_ai.output.messages": '[{"role": "assistant", "parts": [], "finish_reason": "stop"}]',
            "gen_ai.usage.cost": 0.001,
        },
        otel_kind=3,
    )
    assert (s.kind, s.operation, s.provider, s.request_model, s.response_model) == (
        "llm",
        "chat",
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert (s.input_tokens, s.output_tokens, s.session_id, s.user_id, s.ttft_ms) == (12, 5, "conv-1", "ann", 250.0)
    assert s.cost_usd == 0.001
    assert s.input == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert s.output[0]["finish_reason"] == "stop"
    assert "gen_ai.input.messages" not in s.attributes and s.attributes["otel.span_kind"] == "client"


def test_legacy_gen_ai_system_and_usage_names_are_mapped() -> None:
    """``gen_ai.system`` and ``gen_ai.usage.prompt/completion_tokens`` (<= v1.36) fill the canonical names too."""
    s = _span({"gen_ai.system": "anthropic", "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 2})
    assert (s.kind, s.provider, s.input_tokens, s.output_tokens) == ("llm", "anthropic", 7, 2)
    assert s.attributes["gen_ai.provider.name"] == "anthropic" and s.attributes["gen_ai.system"] == "anthropic"
    assert s.attributes["gen_ai.usage.input_tokens"] == 7 and s.attributes["gen_ai.usage.prompt_tokens"] == 7


def test_openinference_llm_span_is_unflattened_to_parts() -> None:
    """OpenInference flattened messages (incl. tool calls) become parts; token counts, params and cost map."""
    s = _span(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 30,
            "llm.token_count.completion": 4,
            "llm.token_count.prompt_details.cache_read": 10,
            "llm.cost.total": 0.5,
            "llm.invocation_parameters": '{"temperature": 0.3, "max_tokens": 64, "stop": "END"}',
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "be brief",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "weather?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Oslo"}',
            "input.value": '{"raw": "request"}',
            "session.id": "s-9",
            "user.id": "bob",
        }
    )
    assert (s.kind, s.operation, s.provider, s.request_model) == ("llm", "chat", "openai", "gpt-4o-mini")
    assert (s.input_tokens, s.output_tokens, s.cost_usd, s.session_id, s.user_id) == (30, 4, 0.5, "s-9", "bob")
    assert s.input == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
    ]
    call = s.output[0]["parts"][0]
    assert call == {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    a = s.attributes
    assert a["gen_ai.request.temperature"] == 0.3 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.stop_sequences"] == ["END"] and a["gen_ai.usage.cache_read.input_tokens"] == 10
    assert a["gen_ai.conversation.id"] == "s-9" and a["session.id"] == "s-9"
    assert a["input.value"] == '{"raw": "request"}'  # not used for input (messages were), so kept
    assert not any(k.startswith("llm.input_messages.") for k in a)


def test_openinference_retriever_tool_embedding_chain_evaluator_kinds() -> None:
    """Each OpenInference kind lands on a kind the UI understands; retrieval documents keep ids and scores."""
    retr = _span(
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "what is llmops?",
            "retrieval.documents.0.document.id": "d1",
            "retrieval.documents.0.document.score": 0.9,
            "retrieval.documents.0.document.content": "llmops is…",
            "retrieval.documents.1.document.id": "d2",
            "retrieval.documents.1.document.score": 0.4,
            "retrieval.documents.1.document.metadata": '{"source": "wiki"}',
        }
    )
    assert retr.kind == "retrieval" and retr.operation is None and retr.input == "what is llmops?"
    assert retr.output == [
        {"id": "d1", "score": 0.9, "content": "llmops is…"},
        {"id": "d2", "score": 0.4, "metadata": {"source": "wiki"}},
    ]
    tool = _span(
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "calc",
            "input.value": '{"x": 1}',
            "input.mime_type": "application/json",
            "output.value": "2",
        }
    )
    assert (tool.kind, tool.input, tool.output, tool.attributes["gen_ai.tool.name"]) == ("tool", {"x": 1}, "2", "calc")
    assert tool.operation is None and tool.attributes["gen_ai.operation.name"] == "execute_tool"
    emb = _span({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "e5"})
    assert (emb.kind, emb.operation, emb.request_model) == ("embedding", "embeddings", "e5")
    assert _span({"openinference.span.kind": "CHAIN"}).kind == "chain"
    assert _span({"openinference.span.kind": "AGENT"}).kind == "agent"
    assert _span({"openinference.span.kind": "EVALUATOR"}).kind == "evaluator"
    assert _span({"gen_ai.operation.name": "execute_tool"}).kind == "tool"
    assert _span({"http.method": "GET"}).kind == "internal"


def test_openllmetry_indexed_prompts_and_legacy_events() -> None:
    """``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` and the deprecated content events become messages."""
    s = _span(
        {
            "gen_ai.system": "openai",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hello",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hi!",
        }
    )
    assert s.input == [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
    assert s.output == [{"role": "assistant", "parts": [{"type": "text", "content": "hi!"}]}]
    events = [
        {"name": "gen_ai.user.message", "time_ns": 1, "attributes": {"content": "q?"}},
        {"name": "gen_ai.choice", "time_ns": 2, "attributes": {"message": {"content": "a!"}, "finish_reason": "stop"}},
        {"name": "exception", "time_ns": 3, "attributes": {"exception.message": "boom"}},
    ]
    e = _span({"gen_ai.system": "openai"}, events=events, status=(2, ""))
    assert e.input == [{"role": "user", "parts": [{"type": "text", "content": "q?"}]}]
    assert e.output == [{"role": "assistant", "parts": [{"type": "text", "content": "a!"}], "finish_reason": "stop"}]
    assert e.status == "error" and e.error == "boom"
    assert [ev["name"] for ev in e.attributes["otel.events"]] == ["exception"]


def test_resource_scope_and_status() -> None:
    """Resource attributes are kept under ``resource``; OTLP status code 2 is an error with its message."""
    s = _span({}, resource={"service.name": "svc"}, scope=("my.lib", "1.2"), status=(2, "it failed"))
    assert s.attributes["resource"] == {"service.name": "svc"}
    assert s.attributes["otel.scope.name"] == "my.lib" and s.attributes["otel.scope.version"] == "1.2"
    assert (s.status, s.error) == ("error", "it failed")
    assert _span({}, status=(1, "")).status == "ok"


def test_long_and_nul_values_fit_the_columns() -> None:
    """Column values are cut to their column widths and lose NUL characters (PostgreSQL cannot store them)."""
    s = _span({"gen_ai.request.model": "m" * 500, "user.id": "a\x00b"}, name="n" * 1000)
    assert len(s.name) == 300 and len(s.request_model or "") == 200 and s.user_id == "ab"
    assert s.attributes["gen_ai.request.model"] == "m" * 500  # the attribute keeps the full value


def test_unflatten_nests_lists_and_maps() -> None:
    flat = {"0.message.role": "user", "0.message.contents.1.text": "b", "0.message.contents.0.text": "a", "x": 1}
    assert unflatten({k: v for k, v in flat.items() if k != "x"}) == [
        {"message": {"role": "user", "contents": [{"text": "a"}, {"text": "b"}]}}
    ]
    assert unflatten({"a": 1, "a.b": 2}) == {"a": 1}  # a clash keeps the shorter key


_CONTENT = ("gen_ai.input.messages", "gen_ai.output.messages", "input.value", "output.value")
_keys = st.text(st.sampled_from("abcgenai_.lmt0123"), min_size=1, max_size=24).filter(
    lambda k: (
        k not in _CONTENT
        and not k.startswith(("llm.input_messages.", "llm.output_messages."))
        and not k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "retrieval.documents."))
        and not k.endswith(".mime_type")
        and k not in ("resource",)
        and not k.startswith("otel.")
    )
)
_values = st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.booleans())


@given(st.dictionaries(_keys, _values, max_size=12))
def test_every_non_content_attribute_is_kept(attrs: dict[str, Any]) -> None:
    """Property: whatever a sender sets (outside the content attributes), it is stored unchanged."""
    s = _span(attrs)
    for key, value in attrs.items():
        assert s.attributes[key] == value
