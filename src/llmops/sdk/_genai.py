"""One OpenAI API call as an OTel GenAI span: request attributes, response (or streamed chunks), errors.

Objects from the ``openai`` package are read by duck typing (``getattr`` / dict keys): the SDK never imports
``openai``, and a response field that is missing or oddly shaped costs an attribute, never the caller's call.
Messages follow the conventions' parts format
(``[{"role": "user", "parts": [{"type": "text", "content": "..."}]}]``); content is clipped to the runtime's
``max_content_bytes`` by shortening the longest text parts first, so the JSON stays valid.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llmops.sdk import _attributes as a
from llmops.sdk._content import TRUNCATED, clip, to_json
from llmops.sdk.runtime import Runtime
from llmops.sdk.spans import record_error

log = logging.getLogger("llmops.sdk")

_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
_OUTPUT_TYPES = {"text": "text", "json_object": "json", "json_schema": "json"}
_KINDS = {"chat": "llm", "embeddings": "embedding"}


def get(obj: Any, key: str) -> Any:
    """``obj[key]`` for a dict, ``obj.key`` otherwise; None when missing."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _json_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return arguments
    return arguments


def _part(part: Any) -> dict[str, Any]:
    kind = get(part, "type")
    if kind == "text":
        return {"type": "text", "content": get(part, "text")}
    if kind == "image_url":
        url = str(get(get(part, "image_url"), "url") or "")
        return {"type": "uri", "modality": "image", "uri": url if not url.startswith("data:") else "data:…"}
    return {"type": str(kind)}  # audio, files: what was sent, never the bytes


def input_message(message: Any) -> dict[str, Any]:
    role, content = get(message, "role"), get(message, "content")
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": get(message, "tool_call_id"), "response": content})
    elif isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(_part(p) for p in content)
    for call in get(message, "tool_calls") or ():
        fn = get(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": get(call, "id"),
                "name": get(fn, "name"),
                "arguments": _json_arguments(get(fn, "arguments")),
            }
        )
    out: dict[str, Any] = {"role": str(role or "user"), "parts": parts}
    if get(message, "name"):
        out["name"] = get(message, "name")
    return out


def output_message(message: Any, finish_reason: Any) -> dict[str, Any]:
    out = input_message({"role": "assistant", "content": get(message, "content"), "tool_calls": None})
    refusal = get(message, "refusal")
    if refusal:
        out["parts"].append({"type": "refusal", "content": refusal})
    out["parts"].extend(input_message({"role": "assistant", "tool_calls": get(message, "tool_calls")})["parts"])
    out["finish_reason"] = finish_reason if finish_reason is not None else "error"
    return out


def messages_json(messages: list[dict[str, Any]], max_bytes: int) -> str:
    """JSON of parts-format messages within ``max_bytes``: long text parts are shortened first."""
    text = to_json(messages)
    if len(text.encode()) <= max_bytes:
        return text
    texts = [p for m in messages for p in m.get("parts", ()) if isinstance(p.get("content"), str)]
    overhead = len(text.encode()) - sum(len(p["content"].encode()) for p in texts)
    share = (max_bytes - overhead) // max(1, len(texts))
    if share > len(TRUNCATED.encode()) * 2:
        for p in texts:
            p["content"] = clip(p["content"], share)
        text = to_json(messages)
    return clip(text, max_bytes)


def request_attributes(operation: str, kwargs: dict[str, Any], base_url: Any) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {a.OPERATION: operation, a.PROVIDER: "openai"}
    attrs.update(a.kind_attributes(_KINDS[operation]))
    if isinstance(kwargs.get("model"), str):
        attrs[a.REQUEST_MODEL] = kwargs["model"]
    for param, attr in _PARAMS.items():
        if _scalar(kwargs.get(param)):
            attrs[attr] = kwargs[param]
    stop = kwargs.get("stop")
    if isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        attrs["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if isinstance(kwargs.get("n"), int) and kwargs["n"] != 1:
        attrs["gen_ai.request.choice.count"] = kwargs["n"]
    if kwargs.get("stream") is True:
        attrs["gen_ai.request.stream"] = True
    output_type = _OUTPUT_TYPES.get(str(get(kwargs.get("response_format"), "type")))
    if output_type:
        attrs[a.OUTPUT_TYPE] = output_type
    if isinstance(kwargs.get("dimensions"), int):
        attrs["gen_ai.embeddings.dimension.count"] = kwargs["dimensions"]
    if isinstance(kwargs.get("encoding_format"), str):
        attrs["gen_ai.request.encoding_formats"] = [kwargs["encoding_format"]]
    host, port = getattr(base_url, "host", None), getattr(base_url, "port", None)
    if host:
        attrs[a.SERVER_ADDRESS] = str(host)
    if isinstance(port, int):
        attrs[a.SERVER_PORT] = port
    return attrs


def content_attributes(operation: str, kwargs: dict[str, Any], max_bytes: int) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    if operation == "embeddings":
        if kwargs.get("input") is not None:
            attrs[a.INPUT_VALUE] = clip(to_json(kwargs["input"]), max_bytes)
            attrs[a.INPUT_MIME] = "application/json"
        return attrs
    messages = kwargs.get("messages")
    if isinstance(messages, list | tuple):
        attrs[a.INPUT_MESSAGES] = messages_json([input_message(m) for m in messages], max_bytes)
    if isinstance(kwargs.get("tools"), list | tuple):
        attrs[a.TOOL_DEFINITIONS] = clip(to_json(kwargs["tools"]), max_bytes)
    return attrs


def usage_attributes(usage: Any, operation: str) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    pairs = (
        (a.INPUT_TOKENS, get(usage, "prompt_tokens")),
        (a.OUTPUT_TOKENS, get(usage, "completion_tokens") if operation == "chat" else None),
        (a.CACHE_READ_TOKENS, get(get(usage, "prompt_tokens_details"), "cached_tokens")),
        (a.REASONING_TOKENS, get(get(usage, "completion_tokens_details"), "reasoning_tokens")),
    )
    for key, value in pairs:
        if isinstance(value, int) and not isinstance(value, bool):
            attrs[key] = value
    return attrs


class _StreamedChoice:
    """What the chunks of one choice said, bounded: text up to the content budget, tool calls by index."""

    __slots__ = ("text", "size", "tools", "finish_reason", "refusal")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.size = 0
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None
        self.refusal: list[str] = []

    def add(self, delta: Any, finish_reason: Any, budget: int) -> None:
        content = get(delta, "content")
        if isinstance(content, str) and content and self.size < budget:
            self.text.append(content)
            self.size += len(content)
        refusal = get(delta, "refusal")
        if isinstance(refusal, str) and refusal:
            self.refusal.append(refusal)
        for call in get(delta, "tool_calls") or ():
            acc = self.tools.setdefault(get(call, "index") or 0, {"id": None, "name": None, "arguments": []})
            fn = get(call, "function")
            acc["id"] = acc["id"] or get(call, "id")
            acc["name"] = acc["name"] or get(fn, "name")
            if isinstance(get(fn, "arguments"), str) and sum(map(len, acc["arguments"])) < budget:
                acc["arguments"].append(get(fn, "arguments"))
        if finish_reason is not None:
            self.finish_reason = finish_reason

    def message(self) -> dict[str, Any]:
        calls = [
            {"id": t["id"], "function": {"name": t["name"], "arguments": "".join(t["arguments"])}}
            for _, t in sorted(self.tools.items())
        ]
        message = {"content": "".join(self.text) or None, "refusal": "".join(self.refusal) or None}
        return output_message({**message, "tool_calls": calls}, self.finish_reason)


class GenAICall:
    """The span of one call. ``finish``/``fail``/``finish_stream`` end it once; none of them ever raises."""

    __slots__ = ("span", "operation", "capture", "max_bytes", "started", "first_chunk", "choices", "streamed", "ended")

    def __init__(self, span: Span, operation: str, capture: bool, max_bytes: int) -> None:
        self.span = span
        self.operation = operation
        self.capture = capture
        self.max_bytes = max_bytes
        self.started = time.monotonic()
        self.first_chunk: float | None = None
        self.choices: dict[int, _StreamedChoice] = {}
        self.streamed: dict[str, Any] = {}  # id, model, usage from the chunks
        self.ended = False

    @classmethod
    def start(cls, rt: Runtime, operation: str, kwargs: dict[str, Any], base_url: Any, capture: bool) -> GenAICall:
        attrs = request_attributes(operation, kwargs, base_url)
        if capture:
            attrs.update(content_attributes(operation, kwargs, rt.max_content_bytes))
        model = kwargs.get("model")
        name = f"{operation} {model}" if isinstance(model, str) else operation
        span = rt.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        return cls(span, operation, capture, rt.max_content_bytes)

    @property
    def context(self) -> Any:
        return trace.set_span_in_context(self.span)

    def fail(self, exc: BaseException) -> None:
        if self.ended:
            return
        self.ended = True
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            self.span.set_attribute(a.HTTP_STATUS, status)
        if self.choices:
            self._set(self._streamed_attributes)
        record_error(self.span, exc)
        self.span.end()

    def finish(self, response: Any) -> None:
        if not self.ended:
            self.ended = True
            self._set(lambda: self._response_attributes(response))
            self.span.end()

    def finish_stream(self, *, closed_early: bool = False) -> None:
        if not self.ended:
            self.ended = True
            if closed_early:
                self.span.set_attribute(a.CLOSED_EARLY, True)
            self._set(self._streamed_attributes)
            self.span.end()

    def _set(self, build: Any) -> None:
        try:
            self.span.set_attributes(build())
        except Exception:  # instrumentation boundary: an odd response shape costs attributes, not the call
            log.debug("llmops: could not read an OpenAI response", exc_info=True)

    def _response_attributes(self, response: Any) -> dict[str, AttributeValue]:
        attrs: dict[str, AttributeValue] = {}
        for key, field in ((a.RESPONSE_ID, "id"), (a.RESPONSE_MODEL, "model")):
            if isinstance(get(response, field), str):
                attrs[key] = get(response, field)
        attrs.update(usage_attributes(get(response, "usage"), self.operation))
        choices = (get(response, "choices") or []) if self.operation == "chat" else []
        reasons = [str(get(c, "finish_reason")) for c in choices if get(c, "finish_reason") is not None]
        if reasons:
            attrs[a.FINISH_REASONS] = reasons
        if self.capture and choices:
            outputs = [output_message(get(c, "message"), get(c, "finish_reason")) for c in choices]
            attrs[a.OUTPUT_MESSAGES] = messages_json(outputs, self.max_bytes)
        return attrs

    def _streamed_attributes(self) -> dict[str, AttributeValue]:
        attrs = self._response_attributes(self.streamed)
        ordered = [c for _, c in sorted(self.choices.items())]
        reasons = [str(c.finish_reason) for c in ordered if c.finish_reason is not None]
        if reasons:
            attrs[a.FINISH_REASONS] = reasons
        if self.capture and ordered:
            attrs[a.OUTPUT_MESSAGES] = messages_json([c.message() for c in ordered], self.max_bytes)
        return attrs

    def add_chunk(self, chunk: Any) -> None:
        try:
            if self.first_chunk is None:
                self.first_chunk = time.monotonic()
                self.span.set_attribute(a.TIME_TO_FIRST_CHUNK, self.first_chunk - self.started)
            for field in ("id", "model"):
                if field not in self.streamed and get(chunk, field) is not None:
                    self.streamed[field] = get(chunk, field)
            if get(chunk, "usage") is not None:
                self.streamed["usage"] = get(chunk, "usage")
            for choice in get(chunk, "choices") or ():
                acc = self.choices.setdefault(get(choice, "index") or 0, _StreamedChoice())
                acc.add(get(choice, "delta"), get(choice, "finish_reason"), self.max_bytes)
        except Exception:  # instrumentation boundary
            log.debug("llmops: could not read an OpenAI stream chunk", exc_info=True)
