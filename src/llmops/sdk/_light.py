"""Light spans: what ``@observe`` and ``span()`` create on the hot path instead of OpenTelemetry SDK spans.

Why: an ``opentelemetry-sdk`` span costs ~20 µs to create, attach and end on a 2-core VM (sampler, id
generator, locks, attribute validation, a ``ReadableSpan`` copy and the processor chain, all on the caller's
thread); issue 3 allows 10 µs for the whole ``@observe`` overhead. A :class:`LightSpan` does on the caller's
thread only what cannot be deferred, and the rest happens in the background (``_light_export``):

- **start**: ids from ``random.getrandbits``, parent and trace id from the current OpenTelemetry context
  (one ``ContextVar.get``), ``time.time_ns()``, attributes in a plain dict, ``user.id`` / ``session.id`` copied
  from a live parent (what ``_inherit.InheritProcessor`` does for SDK spans);
- **attach**: the span is put in a copy of the current OpenTelemetry ``Context`` set straight on the context
  variable of OpenTelemetry's default ``contextvars`` runtime context (what ``context.attach`` does, minus
  two calls); with another runtime context configured, the public ``attach``/``detach`` are used;
- **end**: the end time and one append to a bounded buffer (:class:`SpanSink`). No lock, no validation.

A LightSpan *is* an ``opentelemetry.trace.Span``: ``trace.get_current_span()``, OpenTelemetry instrumentation
started under it (its spans get the right parent and trace id), W3C propagation and user code calling
``set_attribute`` / ``add_event`` / ``set_status`` / ``record_exception`` work as with an SDK span. Its
``SpanContext`` is built on first request only. Attributes set through the Span API (``set_attribute``, user
code) mark the span ``dirty``: its attributes are then validated (invalid values dropped, as the SDK does) when
the background thread turns it into a ``ReadableSpan``; what the SDK writes itself (kind, tags, content
strings, inherited ids) is valid by construction and skips that pass.

Sampling: a root light span asks the sampler of the SDK's provider (``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``) when it is not the default ``ParentBased(ALWAYS_ON)``; the default costs nothing on
the hot path. A root it drops becomes a :class:`DroppedSpan`: attached like a span, so what runs
under it sees an unsampled parent, and never exported. Every other light span follows its parent: under a valid
parent that is not sampled (a dropped root, a remote ``traceparent`` with flags ``00``) no span is made at all
(the SDK would make a non-recording one), and the call just runs.

This module imports the OpenTelemetry API only (``import llmops`` + ``@observe`` stay light).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from random import getrandbits
from time import time_ns
from types import MappingProxyType
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util import types

from llmops.sdk._attributes import INHERITED

log = logging.getLogger("llmops.sdk")

SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
UNSET_STATUS = Status(StatusCode.UNSET)
# the key OpenTelemetry stores the current span under (it carries a random suffix): read through the public API
SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))


def _context_var() -> ContextVar[Context] | None:
    """The context variable behind OpenTelemetry's default runtime context, if that is the one in use."""
    runtime_context = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime_context, "_current_context", None)
    return var if isinstance(var, ContextVar) else None


_VAR = _context_var()

current_context: Callable[[], Context]
attach: Callable[[Context], Any]
if _VAR is not None:
    current_context = _VAR.get
    attach = _VAR.set
    _reset = _VAR.reset

    def detach(token: Any) -> None:
        try:
            _reset(token)
        except ValueError:  # a token of another context (OpenTelemetry logs and goes on, so do we)
            log.debug("llmops: span context detached in another context", exc_info=True)

else:  # pragma: no cover - only with OTEL_PYTHON_CONTEXT set to a non-default runtime context
    current_context = otel_context.get_current
    attach = otel_context.attach

    def detach(token: Any) -> None:
        otel_context.detach(token)


def with_span(ctx: Context, span: Span) -> Context:
    """``ctx`` with ``span`` as its current span (``trace.set_span_in_context`` for a known context)."""
    new = Context(ctx)
    dict.__setitem__(new, SPAN_KEY, span)
    return new


class SpanSink(Protocol):
    """Where ended light spans go (``_light_export.LightExport``): must not block and must not raise."""

    def put(self, span: LightSpan) -> None: ...


class LightSpan(Span):
    """A recording span kept as plain Python values until a background thread exports it."""

    __slots__ = (
        "name",
        "trace_id",
        "span_id",
        "parent",
        "trace_state",
        "start_ns",
        "end_ns",
        "attrs",
        "events",
        "links",
        "status",
        "dirty",
        "_context",
        "_sink",
    )

    def __init__(
        self,
        name: str,
        trace_id: int,
        parent: LightSpan | SpanContext | None,
        trace_state: TraceState | None,
        attrs: dict[str, Any],
        sink: SpanSink,
    ) -> None:
        self.name = name
        self.trace_id = trace_id
        self.span_id = getrandbits(64) or 1
        self.parent = parent
        self.trace_state = trace_state
        self.attrs = attrs
        self.events: list[tuple[str, types.Attributes, int]] | None = None
        self.links: list[tuple[SpanContext, types.Attributes]] | None = None
        self.status = UNSET_STATUS
        self.dirty = False  # attributes set through the API: validate them at export
        self._context: SpanContext | None = None
        self._sink = sink
        self.end_ns = 0
        self.start_ns = time_ns()

    # --- opentelemetry.trace.Span ---

    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:
            ctx = self._context = SpanContext(self.trace_id, self.span_id, False, SAMPLED, self.trace_state)
        return ctx

    def is_recording(self) -> bool:
        return not self.end_ns

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_time or time_ns()
        self._sink.put(self)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if not self.end_ns:
            # a list is copied (the SDK copies sequences too), so later changes by the caller do not leak in
            self.attrs[key] = tuple(value) if isinstance(value, list) else value
            self.dirty = True

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_ns:
            return
        if self.events is None:
            self.events = []
        self.events.append((name, dict(attributes) if attributes else None, timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_ns or (not context.is_valid and not attributes and not context.trace_state):
            return
        if self.links is None:
            self.links = []
        self.links.append((context, dict(attributes) if attributes else None))

    def update_name(self, name: str) -> None:
        if not self.end_ns:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # the SDK's rules: OK is final, UNSET never overrides
        if self.end_ns or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        cls = type(exception)
        module = cls.__module__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    # --- read access (what ``InheritProcessor``, tags and ``trace_headers`` read on SDK spans) ---

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType(self.attrs)

    def __repr__(self) -> str:
        return f"LightSpan(name={self.name!r}, trace_id=0x{self.trace_id:032x}, span_id=0x{self.span_id:016x})"


class DroppedSpan(LightSpan):
    """A root span the sampler dropped. Attached like any span, so the spans of what runs under it see an
    unsampled parent (light spans are not made, SDK spans and propagated ``traceparent`` headers are not
    sampled); never recorded or exported: it is born ended, which makes every mutator a no-op."""

    __slots__ = ()

    def __init__(self, name: str, trace_id: int, sink: SpanSink) -> None:
        super().__init__(name, trace_id, None, None, {}, sink)
        self.end_ns = self.start_ns

    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:
            ctx = self._context = SpanContext(self.trace_id, self.span_id, False, NOT_SAMPLED, self.trace_state)
        return ctx


class RootSampler(Protocol):
    """What light spans need of an OpenTelemetry SDK ``Sampler``."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: types.Attributes = None,
    ) -> Any: ...


def start_span(
    name: str, attrs: dict[str, Any], ctx: Context, sink: SpanSink, sampler: RootSampler | None = None
) -> LightSpan | None:
    """A light span child of the current span of ``ctx`` (None under an unsampled parent). ``attrs`` is owned
    by the span from now on. ``sampler`` decides roots (None: every root is sampled)."""
    parent = ctx.get(SPAN_KEY)
    if type(parent) is LightSpan:
        parent_attrs = parent.attrs
        for key in INHERITED:
            if key in parent_attrs and key not in attrs:
                attrs[key] = parent_attrs[key]
        return LightSpan(name, parent.trace_id, parent, parent.trace_state, attrs, sink)
    if parent is None or not isinstance(parent, Span):
        return _root(name, attrs, sink, sampler)
    return _under_foreign_parent(name, attrs, parent, sink, sampler)


def _root(name: str, attrs: dict[str, Any], sink: SpanSink, sampler: RootSampler | None) -> LightSpan:
    trace_id = getrandbits(128) or 1
    if sampler is None:
        return LightSpan(name, trace_id, None, None, attrs, sink)
    result = sampler.should_sample(None, trace_id, name, SpanKind.INTERNAL, attrs)
    if not result.decision.is_sampled():
        return DroppedSpan(name, trace_id, sink)
    if result.attributes:
        attrs.update(result.attributes)
    return LightSpan(name, trace_id, None, result.trace_state, attrs, sink)


def _under_foreign_parent(
    name: str, attrs: dict[str, Any], parent: Span, sink: SpanSink, sampler: RootSampler | None
) -> LightSpan | None:
    """Under an OpenTelemetry SDK span, a remote (propagated) context or the invalid span."""
    parent_ctx = parent.get_span_context()
    if not parent_ctx.is_valid:
        return _root(name, attrs, sink, sampler)
    if not parent_ctx.trace_flags.sampled:
        return None
    parent_attrs = getattr(parent, "attributes", None) if parent.is_recording() else None
    if parent_attrs:
        for key in INHERITED:
            value = parent_attrs.get(key)
            if value is not None and key not in attrs:
                attrs[key] = value
    return LightSpan(name, parent_ctx.trace_id, parent_ctx, parent_ctx.trace_state, attrs, sink)


def parent_context(span: LightSpan) -> SpanContext | None:
    parent = span.parent
    return parent.get_span_context() if isinstance(parent, LightSpan) else parent
