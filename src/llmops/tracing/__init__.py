"""Traces and spans: the durable record of every LLM call, and queries over it.

Owns: span/trace storage (``_sql.py``), the background writer that batches spans into the
database (``recorder.py``), list/detail/metrics queries (``service.py``). Imports only
``llmops.core``. The gateway records through :class:`SpanRecorder`; nothing else writes spans.
"""

from llmops.tracing.models import MetricsQuery, Span, TraceFilter, TracePage, TraceSummary
from llmops.tracing.recorder import SpanRecorder
from llmops.tracing.service import TraceService, span_tree
from llmops.tracing.store import TraceStore

__all__ = [
    "MetricsQuery",
    "Span",
    "SpanRecorder",
    "TraceFilter",
    "TracePage",
    "TraceService",
    "TraceStore",
    "TraceSummary",
    "span_tree",
]
