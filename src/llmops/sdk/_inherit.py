"""The span processor that carries ``user.id`` / ``session.id`` down a trace (imported by ``init`` only:
``opentelemetry.sdk`` is too heavy for ``import llmops``).

It acts on SDK spans (other instrumentation, ``wrap_openai``), under a light or an SDK parent alike (both
expose ``attributes``). Light spans (``@observe``, ``span()``) are not started through the provider: they
copy the same keys under the same rule in ``_light.start_span``."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

from llmops.sdk._attributes import INHERITED


class InheritProcessor(SpanProcessor):
    """A new span takes ``user.id`` / ``session.id`` / ``gen_ai.conversation.id`` from its parent, when the
    parent is a live span of this process and the new span did not set them itself."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        parent_attrs = getattr(trace.get_current_span(parent_context), "attributes", None)
        if not parent_attrs:
            return
        own = span.attributes or {}
        for key in INHERITED:
            value = parent_attrs.get(key)
            if value is not None and key not in own:
                span.set_attribute(key, value)
