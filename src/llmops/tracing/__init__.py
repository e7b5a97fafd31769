"""Traces and spans: the durable record of every LLM call, and queries over it.

Owns: span/trace storage (``_sql.py``), the background writer that batches spans into the
database (``recorder.py``), list/detail/metrics queries (``service.py``), feedback scores
(``scores.py``), sessions and users (``sessions.py``), query parameters (``query.py``) and export
(``export.py``), OTLP/HTTP ingest (``ingest.py``, ``_otlp.py``, the attribute mapping in ``semconv.py``),
redaction and per-project privacy settings (``privacy.py``) and retention (``retention.py``).
Imports only ``llmops.core`` and ``llmops.projects``.
Two paths write spans, both through the one redacting :class:`~llmops.tracing.privacy.RedactingWriter`:
the gateway's :class:`SpanRecorder` (fire-and-forget) and OTLP ingest (acknowledged after commit).
"""

from llmops.tracing.export import TraceExporter
from llmops.tracing.models import MetricsQuery, ScoreCondition, Span, TraceFilter, TracePage, TraceSummary
from llmops.tracing.query import filter_params, parse_trace_filter
from llmops.tracing.recorder import SpanRecorder
from llmops.tracing.scores import NewScore, Score, ScoreFilter, ScoreService
from llmops.tracing.service import TraceService, span_tree
from llmops.tracing.sessions import ScoreSummary, SessionService, SessionSummary, Turn, UserSummary, main_span
from llmops.tracing.store import TraceStore

__all__ = [
    "MetricsQuery",
    "NewScore",
    "Score",
    "ScoreCondition",
    "ScoreFilter",
    "ScoreService",
    "ScoreSummary",
    "SessionService",
    "SessionSummary",
    "TraceExporter",
    "Turn",
    "UserSummary",
    "filter_params",
    "main_span",
    "parse_trace_filter",
    "Span",
    "SpanRecorder",
    "TraceFilter",
    "TracePage",
    "TraceService",
    "TraceStore",
    "TraceSummary",
    "span_tree",
]
