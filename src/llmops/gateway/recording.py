"""Turning one gateway call into a span that follows the OTel GenAI conventions.

Content (``gen_ai.input.messages`` / ``gen_ai.output.messages``, in the conventions' "parts" format)
is captured unless ``LLMOPS_GATEWAY_CAPTURE_CONTENT=false``, each text cut to ``max_capture_chars``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from llmops.core.errors import Attempt, InvalidInputError
from llmops.core.ids import new_id, new_span_id, new_trace_id
from llmops.gateway.routing import Deployment
from llmops.projects import Principal
from llmops.tracing import Span

_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


@dataclass
class CallContext:
    principal: Principal
    request_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    user_id: str | None
    session_id: str | None
    start_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)  # extra span attributes (e.g. llmops.prompt.*)
    rag: str | None = None  # the x-llmops-rag header (see gateway.retrieval)
    cache: str | None = None  # the x-llmops-cache header (see gateway.cache)
    cache_ttl: str | None = None  # the x-llmops-cache-ttl header (see gateway.cache)
    tags: list[str] = field(default_factory=list)  # metadata.tags / x-llmops-tags (parse_tags): span llmops.tags
    admission: Any = None  # budgets + rate limits: the call's ratelimits.Admission, settled once in _record

    @classmethod
    def internal(
        cls,
        principal: Principal,
        *,
        trace_id: str | None = None,
        parent_span_id: str | None = None,
        user_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> CallContext:
        """The context of a call the platform makes itself (experiments, judges, batches, corpus health): fresh
        ids (a new trace unless ``trace_id``), started now, billed and recorded under ``principal``."""
        return cls(
            principal=principal,
            request_id=new_id("req"),
            trace_id=trace_id or new_trace_id(),
            span_id=new_span_id(),
            parent_span_id=parent_span_id,
            user_id=user_id,
            session_id=None,
            start_ns=time.time_ns(),
            attributes=attributes if attributes is not None else {},
            tags=tags if tags is not None else [],
        )


MAX_TAGS = 20
MAX_TAG_CHARS = 64


def parse_tags(header: str | None, body: Any) -> list[str]:
    """Tags of a call: the ``x-llmops-tags: a,b`` header plus the body's ``metadata.tags`` (a list of strings or
    a comma-separated string), deduplicated in order. ``metadata.tags`` is removed from the body (OpenAI's
    ``metadata`` takes string values only, so it is never forwarded upstream)."""
    values: list[Any] = [t for t in (header or "").split(",")]
    meta = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(meta, dict) and "tags" in meta:
        raw = meta.pop("tags")
        if not meta:
            body.pop("metadata")
        if isinstance(raw, str):
            values += raw.split(",")
        elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
            values += raw
        else:
            raise InvalidInputError("metadata.tags must be a list of strings", param="metadata.tags")
    tags = list(dict.fromkeys(t.strip() for t in values if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
        raise InvalidInputError(
            f"at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters each", param="metadata.tags"
        )
    return tags


@dataclass
class CallOutcome:
    """What one call produced, filled in as it goes (streams fill it chunk by chunk)."""

    end_ns: int = 0
    status: str = "ok"
    error: str | None = None
    error_type: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_estimated: bool = False
    ttft_ms: float | None = None
    output_messages: list[dict[str, Any]] | None = None
    cost_usd: float | None = None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} chars cut]"


def _parts(content: Any, limit: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": _clip(content, limit)}]
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, dict) and p.get("type") == "text":
            parts.append({"type": "text", "content": _clip(str(p.get("text", "")), limit)})
        elif isinstance(p, dict):
            parts.append({"type": str(p.get("type", "unknown"))})
    return parts


def _tool_call_parts(tool_calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for tc in tool_calls or []:
        fn = tc.get("function") or {}
        out.append({"type": "tool_call", "id": tc.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")})
    return out


def input_messages(messages: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        if m.get("role") == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": m.get("tool_call_id"),
                    "response": _clip(str(m.get("content")), limit),
                }
            ]
        else:
            parts = _parts(m.get("content"), limit) + _tool_call_parts(m.get("tool_calls"))
        out.append({"role": m.get("role"), "parts": parts})
    return out


def output_message(message: dict[str, Any], finish_reason: str | None, limit: int) -> dict[str, Any]:
    parts = _parts(message.get("content"), limit) + _tool_call_parts(message.get("tool_calls"))
    return {"role": "assistant", "parts": parts, "finish_reason": finish_reason}


def build_span(
    ctx: CallContext,
    *,
    operation: str,
    alias: str,
    body: dict[str, Any],
    deployment: Deployment | None,
    attempts: list[Attempt],
    outcome: CallOutcome,
    capture: bool,
    input_content: Any,
) -> Span:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": alias,
        "llmops.request_id": ctx.request_id,
        "llmops.project_id": ctx.principal.project_id,
        "llmops.key_id": ctx.principal.key_id,
        **ctx.attributes,
    }
    if ctx.tags:  # tags (parse_tags): what cost reports group by
        attrs["llmops.tags"] = ctx.tags
    for src, dst in _REQUEST_PARAMS.items():
        if body.get(src) is not None:
            attrs[dst] = body[src]
    if body.get("stop") is not None:
        attrs["gen_ai.request.stop_sequences"] = [body["stop"]] if isinstance(body["stop"], str) else body["stop"]
    if operation == "chat":
        attrs["gen_ai.request.stream"] = bool(body.get("stream"))
        fmt = (body.get("response_format") or {}).get("type")
        attrs["gen_ai.output.type"] = "json" if fmt in ("json_object", "json_schema") else "text"
    if ctx.session_id:
        attrs["gen_ai.conversation.id"] = ctx.session_id
    if deployment is not None:
        attrs["gen_ai.provider.name"] = deployment.provider_name
        attrs["llmops.deployment"] = deployment.name
        attrs["llmops.upstream_model"] = deployment.upstream_model
        if deployment.server_address:
            attrs["server.address"] = deployment.server_address
    _outcome_attrs(attrs, outcome)
    if attempts:
        attrs["llmops.failed_attempts"] = [asdict(a) for a in attempts]
    if capture and body.get("tools"):
        attrs["gen_ai.tool.definitions"] = orjson.dumps(body["tools"]).decode()
    return Span(
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=ctx.parent_span_id,
        project_id=ctx.principal.project_id,
        name=f"{operation} {alias}",
        kind="llm" if operation == "chat" else "embedding",
        start_ns=ctx.start_ns,
        end_ns=outcome.end_ns,
        status=outcome.status,
        error=outcome.error,
        operation=operation,
        provider=deployment.provider_name if deployment else None,
        request_model=alias,
        response_model=outcome.response_model,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd,
        ttft_ms=outcome.ttft_ms,
        user_id=ctx.user_id,
        session_id=ctx.session_id,
        key_id=ctx.principal.key_id,
        attributes=attrs,
        input=input_content if capture else None,
        output=outcome.output_messages if capture else None,
    )


def _outcome_attrs(attrs: dict[str, Any], o: CallOutcome) -> None:
    pairs = {
        "gen_ai.response.id": o.response_id,
        "gen_ai.response.model": o.response_model,
        "gen_ai.usage.input_tokens": o.input_tokens,
        "gen_ai.usage.output_tokens": o.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": o.cached_tokens,
        "gen_ai.usage.reasoning.output_tokens": o.reasoning_tokens,
        "gen_ai.response.time_to_first_chunk": o.ttft_ms / 1000 if o.ttft_ms is not None else None,
        "error.type": o.error_type,
        "llmops.cost_usd": o.cost_usd,
    }
    attrs.update({k: v for k, v in pairs.items() if v is not None})
    if o.finish_reasons:
        attrs["gen_ai.response.finish_reasons"] = o.finish_reasons
    if o.usage_estimated:
        attrs["llmops.usage.estimated"] = True


def apply_usage(outcome: CallOutcome, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    outcome.input_tokens = int(usage.get("prompt_tokens") or 0)
    outcome.output_tokens = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    outcome.cached_tokens = int(cached) if cached else None
    outcome.reasoning_tokens = int(reasoning) if reasoning else None
