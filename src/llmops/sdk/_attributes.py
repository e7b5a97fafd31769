"""Attribute names the SDK writes (OTel GenAI, OpenInference, llmops), and the span kinds.

Our own constants rather than ``opentelemetry-semantic-conventions``: its GenAI names are deprecated there
("moved to the GenAI repo"), and the server's normaliser (``llmops.tracing.semconv``) reads exactly these.
"""

from __future__ import annotations

from typing import Literal

SpanKindName = Literal["llm", "retrieval", "tool", "embedding", "agent", "chain", "evaluator"]

# kind -> OpenInference value; both are written so OpenInference-aware backends (Phoenix) read our spans too
OPENINFERENCE_KINDS: dict[str, str] = {
    "llm": "LLM",
    "retrieval": "RETRIEVER",
    "tool": "TOOL",
    "embedding": "EMBEDDING",
    "agent": "AGENT",
    "chain": "CHAIN",
    "evaluator": "EVALUATOR",
}

LLMOPS_KIND = "llmops.span.kind"
OPENINFERENCE_KIND = "openinference.span.kind"
INPUT_VALUE = "input.value"
INPUT_MIME = "input.mime_type"
OUTPUT_VALUE = "output.value"
OUTPUT_MIME = "output.mime_type"
USER_ID = "user.id"
SESSION_ID = "session.id"
CONVERSATION_ID = "gen_ai.conversation.id"
TAGS = "tag.tags"
ERROR_TYPE = "error.type"
CLOSED_EARLY = "llmops.closed_early"  # a generator or stream the consumer stopped before its end

# inherited by every span started under a span that has them (see spans.InheritProcessor)
INHERITED = (USER_ID, SESSION_ID, CONVERSATION_ID)

# OTel GenAI
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
OUTPUT_TYPE = "gen_ai.output.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
HTTP_STATUS = "http.response.status_code"


def kind_attributes(kind: str | None) -> dict[str, str]:
    """The two kind attributes of ``kind`` (none for None); ValueError for an unknown kind."""
    if kind is None:
        return {}
    try:
        return {LLMOPS_KIND: kind, OPENINFERENCE_KIND: OPENINFERENCE_KINDS[kind]}
    except KeyError:
        raise ValueError(f"unknown span kind {kind!r}; use one of {', '.join(OPENINFERENCE_KINDS)}") from None
