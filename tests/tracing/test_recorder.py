"""The span recorder writes in a background thread that gives way to requests, and catches up when behind."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.ids import new_span_id, new_trace_id
from llmops.core.threads import BACKGROUND_NICENESS, lower_thread_priority
from llmops.tracing import Span, TraceFilter
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing.recorder import SpanRecorder

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux-only")


class _NicenessSeen:
    """The real SQLite store, noting each write's thread niceness."""

    def __init__(self, store: SqlTraceStore) -> None:
        self._store = store
        self.niceness: list[int] = []

    def insert_spans(self, batch: list[Span]) -> int:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return self._store.insert_spans(batch)


def _span(i: int) -> Span:
    start = 1_700_000_000_000_000_000 + i
    return Span(
        trace_id=new_trace_id(), span_id=new_span_id(), project_id="p1", name="chat", kind="llm",
        start_ns=start, end_ns=start + 1_000,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> SqlTraceStore:
    engine = create_db_engine(f"sqlite:///{tmp_path / 't.db'}")
    upgrade(engine)
    return SqlTraceStore(engine)


@linux_only
def test_writes_run_at_background_priority_and_catch_up_at_the_default(store: SqlTraceStore) -> None:
    """A batch taken while a full batch still waits goes to the default-priority thread; the rest are written
    at the lowered priority; every span is written once and counted."""
    seen = _NicenessSeen(store)
    process_niceness = os.getpriority(os.PRIO_PROCESS, 0)

    async def main() -> SpanRecorder:
        recorder = SpanRecorder(seen, queue_size=1_000, batch_size=10, flush_interval_ms=5)  # type: ignore[arg-type]
        recorder.start()
        for i in range(45):  # 4.5 batches queued before the writer takes the first
            recorder.record(_span(i))
        await recorder.flush()
        for i in range(45, 48):  # a small batch with nothing behind it
            recorder.record(_span(i))
        await recorder.stop()
        return recorder

    recorder = asyncio.run(main())
    assert recorder.stats.written == 48 and recorder.stats.dropped == 0
    assert recorder.stats.catch_up_batches >= 3  # batches 1-3 had a full batch behind them
    background = min(19, process_niceness + BACKGROUND_NICENESS)
    assert seen.niceness.count(process_niceness) == recorder.stats.catch_up_batches
    assert seen.niceness[-1] == background  # the last batch had nothing behind it
    assert set(seen.niceness) == {process_niceness, background}
    assert len(store.list_traces("p1", TraceFilter(), after=None, limit=100)) == 48


@linux_only
def test_lower_thread_priority_touches_only_the_calling_thread() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    result: list[int] = []

    def body() -> None:
        assert lower_thread_priority()
        result.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert result == [min(19, before + BACKGROUND_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
