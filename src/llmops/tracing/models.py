"""Trace data. A span's ``attributes`` follow the OTel GenAI conventions (``gen_ai.*``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SpanKind = Literal["llm", "embedding", "retrieval", "tool", "agent", "chain", "evaluator", "internal"]
GroupBy = Literal["model", "prompt", "user", "session", "key", "tag"]
ScoreOp = Literal["gt", "gte", "lt", "lte", "eq", "ne"]


@dataclass
class Span:
    trace_id: str
    span_id: str
    project_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str = "ok"
    parent_span_id: str | None = None
    error: str | None = None
    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    ttft_ms: float | None = None
    user_id: str | None = None
    session_id: str | None = None
    key_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    project_id: str
    name: str | None
    start_ns: int
    end_ns: int
    status: str
    user_id: str | None
    session_id: str | None
    model: str | None
    key_id: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    span_count: int
    tags: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class TraceFilter:
    start_ns: int | None = None
    end_ns: int | None = None
    model: str | None = None
    status: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    # query filters (see ``llmops.tracing.query``): every condition must hold
    attributes: tuple[tuple[str, str], ...] = ()  # (span attribute key, value as text): some span has it
    scores: tuple[ScoreCondition, ...] = ()
    tags: tuple[str, ...] = ()
    min_cost_usd: float | None = None
    max_cost_usd: float | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    text: str | None = None  # full-text search over span inputs/outputs
    key_id: str | None = None


@dataclass(frozen=True)
class ScoreCondition:
    """A trace has a score ``name`` whose value compares ``op`` to ``value`` (a number, or text for eq/ne)."""

    name: str
    op: ScoreOp
    value: float | str


@dataclass(frozen=True)
class TracePage:
    items: list[TraceSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class SpanPage:
    """Spans of one trace in (start_ns, span_id) order; ``next_cursor`` is None on the last page."""

    items: list[Span]
    next_cursor: str | None


@dataclass(frozen=True)
class MetricsQuery:
    start_ns: int
    end_ns: int
    bucket_s: int = 60
    group_by: GroupBy | None = None


@dataclass(frozen=True)
class RedactionPolicy:
    """What is redacted from a project's spans before they are stored (see ``llmops.tracing.privacy``)."""

    secrets: bool = True
    emails: bool = False
    phones: bool = False
    cards: bool = False
    custom_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TraceSettings:
    """A project's trace privacy and retention settings. ``retention_days`` None: the server default;
    0: keep forever."""

    project_id: str
    redaction: RedactionPolicy = field(default_factory=RedactionPolicy)
    retention_days: int | None = None
    updated_ns: int = 0
