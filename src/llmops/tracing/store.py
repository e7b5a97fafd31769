"""What the tracing services need from storage."""

from __future__ import annotations

from typing import Protocol

from llmops.tracing.models import Span, TraceFilter, TraceSummary


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

    def llm_span_rows(
        self, project_id: str, start_ns: int, end_ns: int, group_col: str | None
    ) -> list[tuple[int, float, str, int, int, float, str | None]]:
        """(start_ns, duration_ms, status, input_tokens, output_tokens, cost_usd, group) of LLM spans."""
        ...
