"""Spans by hand (``with llmops.span(...)``), the current span's user / session / tags, and trace headers.

- ``span(name, kind=...)`` is a context manager usable with ``with`` and ``async with``; it yields an
  :class:`ObservedSpan` (``set_input``, ``set_output``, ``set_attribute``, ``add_tags``, ids). An exception
  leaving the block is recorded on the span (event, ``error.type``, status ERROR) and propagates unchanged.
  Like ``@observe`` it makes a ``_light.LightSpan`` (exported from a background thread).
- ``set_user`` / ``set_session`` write ``user.id`` / ``session.id`` + ``gen_ai.conversation.id`` on the current
  span; every span started under it afterwards copies them (light spans in ``_light.start_span``, SDK spans of
  any instrumentation using our provider in ``_inherit.InheritProcessor``), so a whole request's spans carry
  them without a context variable that could leak.
- ``trace_headers()`` returns the W3C ``traceparent`` (and ``tracestate``) of the current span, plus
  ``x-llmops-user`` / ``x-llmops-session`` that the gateway reads: pass them as ``extra_headers=`` to an
  unwrapped OpenAI client (``wrap_openai`` does it by itself when the client points at the gateway).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from llmops.sdk import runtime
from llmops.sdk._attributes import (
    CLOSED_EARLY,
    CONVERSATION_ID,
    ERROR_TYPE,
    INPUT_MIME,
    INPUT_VALUE,
    OUTPUT_MIME,
    OUTPUT_VALUE,
    SESSION_ID,
    TAGS,
    USER_ID,
    SpanKindName,
    kind_attributes,
)
from llmops.sdk._content import as_text
from llmops.sdk._light import attach, current_context, detach, start_span, with_span

_PROPAGATOR = TraceContextTextMapPropagator()
_UNSET: Any = object()


def record_error(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc`` (a generator closed early is not a failure). Never raises."""
    try:
        if isinstance(exc, GeneratorExit):
            span.set_attribute(CLOSED_EARLY, True)
            return
        cls = type(exc)
        qualified = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
        span.set_attribute(ERROR_TYPE, qualified)
        span.record_exception(exc, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{cls.__name__}: {exc}"))
    except Exception:  # a broken __str__ must not replace the user's exception
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def set_content(span: Span, which: str, value: Any, max_bytes: int) -> None:
    """``input.value`` / ``output.value`` (+ mime type) of ``value``, JSON unless a string, clipped."""
    text, mime = as_text(value, max_bytes)
    # two set_attribute calls: cheaper than one set_attributes, which deep-cleans a copy of the mapping
    if which == "input":
        span.set_attribute(INPUT_VALUE, text)
        span.set_attribute(INPUT_MIME, mime)
    else:
        span.set_attribute(OUTPUT_VALUE, text)
        span.set_attribute(OUTPUT_MIME, mime)


def _merge_tags(span: Span, tags: Sequence[str]) -> None:
    current = getattr(span, "attributes", None) or {}
    merged = list(current.get(TAGS) or ())
    merged += [str(t) for t in tags if str(t) not in merged]
    span.set_attribute(TAGS, merged)


class ObservedSpan:
    """A handle on a span opened by ``span()``. Content setters honour ``init(capture_content=...)``."""

    __slots__ = ("otel_span", "_max_bytes", "_capture")

    def __init__(self, otel_span: Span, max_bytes: int, capture: bool) -> None:
        self.otel_span = otel_span
        self._max_bytes = max_bytes
        self._capture = capture

    @property
    def trace_id(self) -> str | None:
        ctx = self.otel_span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    @property
    def span_id(self) -> str | None:
        ctx = self.otel_span.get_span_context()
        return format(ctx.span_id, "016x") if ctx.is_valid else None

    def set_input(self, value: Any) -> None:
        if self._capture:
            set_content(self.otel_span, "input", value, self._max_bytes)

    def set_output(self, value: Any) -> None:
        if self._capture:
            set_content(self.otel_span, "output", value, self._max_bytes)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.otel_span.set_attribute(key, value)

    def add_tags(self, *tags: str) -> None:
        _merge_tags(self.otel_span, tags)

    def set_user(self, user_id: str) -> None:
        self.otel_span.set_attribute(USER_ID, str(user_id))

    def set_session(self, session_id: str) -> None:
        self.otel_span.set_attributes({SESSION_ID: str(session_id), CONVERSATION_ID: str(session_id)})


def span_attributes(
    kind: SpanKindName | None,
    tags: Sequence[str] | None,
    user_id: str | None = None,
    session_id: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue]:
    """The attributes a span starts with (ValueError for an unknown kind)."""
    attrs: dict[str, AttributeValue] = dict(attributes or {})
    attrs.update(kind_attributes(kind))
    if tags:
        attrs[TAGS] = tuple(str(t) for t in tags)
    if user_id is not None:
        attrs[USER_ID] = str(user_id)
    if session_id is not None:
        attrs[SESSION_ID] = attrs[CONVERSATION_ID] = str(session_id)
    return attrs


class SpanScope:
    """What ``span()`` returns: enter with ``with`` or ``async with``; one use."""

    __slots__ = ("_name", "_attributes", "_dirty", "_input", "_span", "_token")

    def __init__(self, name: str, attributes: dict[str, AttributeValue], input_value: Any, *, dirty: bool) -> None:
        self._name = name
        self._attributes = attributes
        self._dirty = dirty  # attributes from the caller: validated at export
        self._input = input_value
        self._span: Span | None = None
        self._token: object = None

    def __enter__(self) -> ObservedSpan:
        rt = runtime._runtime
        if rt is None:
            return ObservedSpan(trace.INVALID_SPAN, 0, False)
        ctx = current_context()
        light = start_span(self._name, dict(self._attributes), ctx, rt.spans, rt.sampler)
        if light is None:  # under a parent that is not sampled: nothing recorded, the parent stays current
            return ObservedSpan(trace.get_current_span(ctx), 0, False)
        light.dirty = self._dirty
        handle = ObservedSpan(light, rt.max_content_bytes, rt.capture_content and light.is_recording())
        if self._input is not _UNSET:
            handle.set_input(self._input)
        self._span = light
        self._token = attach(with_span(ctx, light))
        return handle

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        otel, self._span = self._span, None
        if otel is None:
            return
        if exc is not None:
            record_error(otel, exc)
        detach(self._token)
        otel.end()

    async def __aenter__(self) -> ObservedSpan:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def span(
    name: str,
    *,
    kind: SpanKindName | None = None,
    input: Any = _UNSET,  # noqa: A002 - the natural name for users
    tags: Sequence[str] | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> SpanScope:
    """A span around a block: ``with llmops.span("retrieve", kind="retrieval") as s: ...; s.set_output(docs)``."""
    attrs = span_attributes(kind, tags, user_id, session_id, attributes)
    return SpanScope(name, attrs, input, dirty=bool(attributes))


def _current_recording() -> Span | None:
    current = trace.get_current_span()
    return current if current.is_recording() else None


def set_user(user_id: str) -> None:
    """``user.id`` on the current span and every span started under it from now on."""
    current = _current_recording()
    if current is not None:
        current.set_attribute(USER_ID, str(user_id))


def set_session(session_id: str) -> None:
    """``session.id`` and ``gen_ai.conversation.id`` on the current span and spans started under it."""
    current = _current_recording()
    if current is not None:
        current.set_attributes({SESSION_ID: str(session_id), CONVERSATION_ID: str(session_id)})


def add_tags(*tags: str) -> None:
    """Add tags (``tag.tags``) to the current span; a trace's tags are those of all its spans."""
    current = _current_recording()
    if current is not None:
        _merge_tags(current, tags)


def current_trace_id() -> str | None:
    """The current trace id (32 hex), e.g. to score this trace later; None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_span_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


def trace_headers() -> dict[str, str]:
    """Headers that make a gateway call's span a child of the current span (empty outside any span)."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    if headers:
        attrs = getattr(trace.get_current_span(), "attributes", None) or {}
        if attrs.get(USER_ID):
            headers["x-llmops-user"] = str(attrs[USER_ID])
        if attrs.get(SESSION_ID):
            headers["x-llmops-session"] = str(attrs[SESSION_ID])
    return headers
