"""What the tracing services need from storage."""

from __future__ import annotations

from typing import Protocol

from llmops.tracing.models import Span, TraceFilter, TraceSettings, TraceSummary


class SpanWriter(Protocol):
    """Where recorders and ingest send spans (the app hands out a redacting one, see ``privacy.py``)."""

    def insert_spans(self, spans: list[Span]) -> int:
        """Insert spans in one transaction; a (trace_id, span_id) already stored is skipped.
        Returns how many were new. Commits before returning."""
        ...


class TraceSettingsStore(Protocol):
    def find_settings(self, project_id: str) -> TraceSettings | None: ...

    def save_settings(self, settings: TraceSettings) -> None: ...


class TraceStore(Protocol):
    def insert_spans(self, spans: list[Span]) -> int:
        """Insert spans in one transaction; a (trace_id, span_id) already stored is skipped.
        Returns how many were new. Commits before returning."""
        ...

    def list_traces(
        self, project_id: str, flt: TraceFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[TraceSummary]: ...

    def find_trace(self, project_id: str, trace_id: str) -> TraceSummary | None: ...

    def list_spans(self, project_id: str, trace_id: str) -> list[Span]: ...

    def list_span_page(
        self, project_id: str, trace_id: str, *, after: tuple[int, str] | None, limit: int
    ) -> list[Span]:
        """Spans of a trace in (start_ns, span_id) order, strictly after ``after``."""
        ...

    def delete_traces_before(self, project_id: str, before_ns: int, *, limit: int) -> int:
        """Delete up to ``limit`` traces that started before ``before_ns``, with their spans, search rows
        and scores, in one transaction. Returns how many traces were deleted."""
        ...

    def llm_span_rows(
        self, project_id: str, start_ns: int, end_ns: int, group_col: str | None
    ) -> list[tuple[int, float, str, int, int, float, str | None]]:
        """(start_ns, duration_ms, status, input_tokens, output_tokens, cost_usd, group) of LLM spans.
        ``group_col`` is a :data:`~llmops.tracing.models.GroupBy`; for ``tag`` the group is a tuple of tags."""
        ...
