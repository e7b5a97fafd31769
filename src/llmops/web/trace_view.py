"""Shaping one trace for its page: a waterfall of spans, chat messages, attempts and attributes.

Pure functions over :class:`~llmops.tracing.Span` (no I/O), so the template stays declarative.
Recorded content is untrusted model/user text: it is only ever passed to autoescaped templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops.tracing import Span, span_tree
from llmops.web.formatting import pretty_json

MIN_BAR_PCT = 0.4  # a zero-length span still shows as a visible tick


@dataclass(frozen=True)
class SpanRow:
    span: Span
    depth: int
    offset_pct: float
    width_pct: float
    children: int

    @property
    def label(self) -> tuple[str, str]:
        """(css class, inline style) placing the duration label after, inside or before the bar."""
        end = self.offset_pct + self.width_pct
        if end <= 86:
            return "", f"left: {end:.3f}%"
        if self.width_pct >= 14:
            return "inside", f"right: {100 - end:.3f}%"
        return "before", f"right: {100 - self.offset_pct:.3f}%"


@dataclass(frozen=True)
class Part:
    type: str  # text | tool_call | tool_call_response | other
    text: str = ""
    name: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    finish_reason: str | None = None


def waterfall(
    spans: list[Span], *, start_ns: int | None = None, end_ns: int | None = None
) -> tuple[list[SpanRow], float]:
    """Depth-first rows with bar offsets/widths as percentages of the whole trace; and its length (ms).
    ``start_ns``/``end_ns`` (the trace's) keep bars of one page of a big trace relative to the whole."""
    if not spans:
        return [], 0.0
    start = min(s.start_ns for s in spans) if start_ns is None else start_ns
    end = max(s.end_ns for s in spans) if end_ns is None else end_ns
    total_ns = max(end - start, 1)
    rows: list[SpanRow] = []

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in sorted(nodes, key=lambda n: n["span"].start_ns):
            s: Span = node["span"]
            width = min(max((s.end_ns - s.start_ns) / total_ns * 100, MIN_BAR_PCT), 100)
            offset = min(max((s.start_ns - start) / total_ns * 100, 0), 100 - width)
            rows.append(SpanRow(s, node["depth"], round(offset, 3), round(width, 3), len(node["children"])))
            walk(node["children"])

    walk(span_tree(spans))
    return rows, total_ns / 1e6


def _part(raw: Any) -> Part:
    if not isinstance(raw, dict):
        return Part("text", str(raw))
    kind = str(raw.get("type", "text"))
    if kind == "text":
        return Part("text", str(raw.get("content", "")))
    if kind == "tool_call":
        return Part("tool_call", _as_text(raw.get("arguments")), name=raw.get("name"), call_id=raw.get("id"))
    if kind == "tool_call_response":
        return Part("tool_call_response", _as_text(raw.get("response")), call_id=raw.get("id"))
    return Part("other", kind)


def _as_text(value: Any) -> str:
    return "" if value is None else pretty_json(value)


def messages(content: Any) -> list[Message] | None:
    """Recorded ``input``/``output`` as chat messages, or None when it is not in the parts format."""
    if not isinstance(content, list) or not all(isinstance(m, dict) and "role" in m for m in content):
        return None
    out = []
    for m in content:
        parts = m.get("parts")
        if parts is None and m.get("content") is not None:  # plain OpenAI shape, from SDK-recorded spans
            parts = [{"type": "text", "content": m["content"]}]
        out.append(Message(str(m.get("role")), [_part(p) for p in parts or []], m.get("finish_reason")))
    return out


def failed_attempts(span: Span) -> list[dict[str, Any]]:
    attempts = span.attributes.get("llmops.failed_attempts")
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []


def attribute_rows(span: Span) -> list[tuple[str, str, bool]]:
    """(key, text, is_block) sorted by key; structured values pretty-printed as JSON blocks."""
    rows = []
    for key in sorted(span.attributes):
        value = span.attributes[key]
        text = value if isinstance(value, str) else _as_text(value)
        rows.append((key, text, "\n" in text or len(text) > 120))
    return rows
