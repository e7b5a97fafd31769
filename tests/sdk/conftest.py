"""SDK fixtures: the SDK initialised with an in-memory exporter (no network), shut down after each test.

``sdk.spans()`` flushes the batch processor and returns every finished span so far; the environment variables
the SDK reads are cleared so no test depends on the developer's shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmops

SDK_ENV = ("LLMOPS_BASE_URL", "LLMOPS_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OTEL_SERVICE_NAME")


@dataclass
class Recorded:
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        assert llmops.flush(timeout_s=10)
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.spans()]}"
        return found[0]

    def attrs(self, name: str) -> dict[str, Any]:
        return dict(self.one(name).attributes or {})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sdk(clean_env: None) -> Iterator[Recorded]:
    """The SDK exporting to memory (content limit 1 KiB, so truncation is cheap to reach)."""
    exporter = InMemorySpanExporter()
    llmops.init(exporter=exporter, set_global_provider=False, max_content_bytes=1024)
    try:
        yield Recorded(exporter)
    finally:
        llmops.shutdown()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id
