"""From ended light spans to the SDK's export pipeline, off the caller's thread (imported by ``init`` only:
it loads ``opentelemetry.sdk``).

:class:`LightExport` is the :class:`~llmops.sdk._light.SpanSink` of one ``init``:

- ``put`` (caller's thread, on every ``end``) appends to a deque bounded at ``max_queue_size``; when it is
  full the span is dropped and counted (never blocks); when it holds ``wake_at`` spans the worker is woken.
- The worker thread (``llmops-spans``, daemon) wakes then or every ``interval_s``, turns each span into an
  ``opentelemetry.sdk.trace.ReadableSpan`` (the provider's resource, the ``llmops.sdk`` instrumentation scope,
  attribute values validated and limited as ``SpanLimits`` says, as the SDK does at ``set_attribute``, unless
  the SDK wrote them all itself and no limit applies: ``LightSpan.dirty``) and
  calls ``on_end`` of the provider's processors (the ``BatchSpanProcessor`` with the exporter, then the
  ``span_processors`` given to ``init``). ``on_start`` is not called for light spans.
- ``flush`` wakes the worker and waits (up to its timeout) until it has drained the buffer, so every span ended
  before has reached the processors; ``provider.force_flush`` then exports them. Processors run on the worker
  only (a slow one never blocks ``flush`` beyond its timeout), except for the last ``drain`` at ``close``.
- Memory: at most ``max_queue_size`` spans here plus the ``BatchSpanProcessor``'s own bounded queue.
- After ``os.fork`` the child starts with an empty buffer and its own worker (as the BatchSpanProcessor does).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util import types

from llmops.sdk._light import LightSpan, parent_context

log = logging.getLogger("llmops.sdk")


class LightExport:
    """The bounded buffer of ended light spans and the thread that hands them to the span processors."""

    def __init__(
        self,
        processors: Sequence[SpanProcessor],
        *,
        resource: Resource,
        scope: InstrumentationScope,
        max_queue_size: int,
        wake_at: int,
        interval_s: float,
    ) -> None:
        self._processors = tuple(processors)
        self._resource = resource
        self._scope = scope
        self._limits = SpanLimits()
        self._length_limited = self._limits.max_span_attribute_length is not None
        self._max = max_queue_size
        self._wake_at = max(1, min(wake_at, max_queue_size))
        self._interval_s = interval_s
        self._buffer: deque[LightSpan] = deque()
        self._woken = False
        self._stopped = False
        self.dropped = 0  # spans dropped because the buffer was full (written unlocked: approximate)
        self._reported = 0
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._flushes: list[threading.Event] = []  # flush calls waiting for the worker's next drain
        self._flushes_lock = threading.Lock()
        self._thread = self._start_worker()
        _forked.add(self)

    # --- caller's thread ---

    def put(self, span: LightSpan) -> None:
        buffer = self._buffer
        if len(buffer) >= self._max:
            self.dropped += 1
            return
        buffer.append(span)
        if len(buffer) >= self._wake_at and not self._woken:
            self._woken = True
            self._wake.set()

    # --- worker / flush / shutdown ---

    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="llmops-spans", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            self._woken = False
            with self._flushes_lock:
                waiting, self._flushes = self._flushes, []
            self.drain()
            for done in waiting:
                done.set()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every span ended before this call has reached the processors; False on timeout."""
        if self._stopped or not self._thread.is_alive():
            return self.drain(timeout_s)
        done = threading.Event()
        with self._flushes_lock:
            self._flushes.append(done)
        self._wake.set()
        return done.wait(timeout_s)

    def drain(self, timeout_s: float | None = None) -> bool:
        """Hand every buffered span to the processors; False when another drain (stuck in a slow processor)
        held the lock longer than ``timeout_s``. Never raises."""
        if not self._drain_lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return False
        try:
            buffer = self._buffer
            while buffer:
                span = buffer.popleft()
                try:
                    readable = self._readable(span)
                    for processor in self._processors:
                        processor.on_end(readable)
                except Exception:  # worker boundary: one bad span must not stop the export of the others
                    log.exception("llmops: could not export span %r", span.name)
            self._report_drops()
        finally:
            self._drain_lock.release()
        return True

    def _report_drops(self) -> None:
        dropped = self.dropped
        if dropped != self._reported:
            log.warning("llmops: span buffer full (max_queue_size=%d): %d spans dropped so far", self._max, dropped)
            self._reported = dropped

    def close(self, timeout_s: float) -> None:
        """Stop the worker and hand over what is left (the processors are shut down by the provider)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self.drain(timeout_s)
        _forked.discard(self)

    def _readable(self, span: LightSpan) -> ReadableSpan:
        limits = self._limits
        attributes: Mapping[str, Any] = span.attrs
        if span.dirty or self._length_limited or len(attributes) > limits.max_span_attributes:  # type: ignore[operator]
            attributes = BoundedAttributes(
                limits.max_span_attributes, attributes, immutable=True, max_value_len=limits.max_span_attribute_length
            )
        events: tuple[Event, ...] = ()
        if span.events:
            events = tuple(
                Event(name, self._bounded(limits.max_event_attributes, attrs), timestamp)
                for name, attrs, timestamp in span.events[: limits.max_events]
            )
        links: tuple[Link, ...] = ()
        if span.links:
            links = tuple(
                Link(ctx, self._bounded(limits.max_link_attributes, attrs))
                for ctx, attrs in span.links[: limits.max_links]
            )
        return ReadableSpan(
            name=span.name,
            context=span.get_span_context(),
            parent=parent_context(span),
            resource=self._resource,
            attributes=attributes,
            events=events,
            links=links,
            kind=SpanKind.INTERNAL,
            status=span.status,
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=self._scope,
        )

    def _bounded(self, limit: int | None, attrs: types.Attributes) -> BoundedAttributes:
        return BoundedAttributes(limit, attrs, immutable=True, max_value_len=self._limits.max_attribute_length)

    def _after_fork(self) -> None:
        self._buffer.clear()
        self._flushes = []
        self._flushes_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._woken = False
        if not self._stopped:
            self._thread = self._start_worker()


_forked: weakref.WeakSet[LightExport] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for export in list(_forked):
        export._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
