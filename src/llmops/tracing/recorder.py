"""Non-blocking span recording: a bounded queue drained by one writer task.

``record()`` never waits and never raises: when the queue is full the span is dropped and counted
(``dropped``), so recording can never slow down or fail a response. The writer commits batches in a
worker thread; ``flush()`` resolves once everything recorded before it is committed; ``stop()`` drains
the queue on shutdown.

The writer thread runs at a lowered priority (``llmops.core.threads``): writing spans is never urgent, answering
requests is. So that a starved writer can never overflow the queue, a batch taken while a full batch still waits
behind it is written by a second thread at the default priority (``stats.catch_up_batches``).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmops.core.threads import background_executor
from llmops.tracing.models import Span
from llmops.tracing.store import SpanWriter

log = logging.getLogger("llmops.tracing")


@dataclass
class RecorderStats:
    recorded: int = 0
    written: int = 0
    dropped: int = 0
    failed_batches: int = 0
    catch_up_batches: int = 0  # written at the default priority because the queue was falling behind


class SpanRecorder:
    def __init__(self, store: SpanWriter, *, queue_size: int, batch_size: int, flush_interval_ms: int) -> None:
        self._store = store
        self._queue: asyncio.Queue[Span | asyncio.Future[None]] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._interval = flush_interval_ms / 1000
        self._task: asyncio.Task[None] | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._catch_up: ThreadPoolExecutor | None = None
        self.stats = RecorderStats()

    def start(self) -> None:
        if self._task is None:
            self._writer = background_executor("llmops-span-writer")
            self._catch_up = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-span-catch-up")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llmops-span-writer")

    def record(self, span: Span) -> None:
        try:
            self._queue.put_nowait(span)
            self.stats.recorded += 1
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning("span queue full: dropped span %s of trace %s", span.span_id, span.trace_id)

    async def flush(self) -> None:
        """Wait until every span recorded before this call is committed."""
        if self._task is None or self._task.done():
            return
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(marker)
        await marker

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        for pool in (self._writer, self._catch_up):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._catch_up = None

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if isinstance(first, Span) and self._queue.qsize() < self._batch_size:
                await asyncio.sleep(self._interval)  # let a batch gather; one timer per batch, not per span
            batch: list[Span] = []
            markers: list[asyncio.Future[None]] = []
            self._take(first, batch, markers)
            while len(batch) < self._batch_size and not self._queue.empty():
                self._take(self._queue.get_nowait(), batch, markers)
            await self._write(batch)
            for m in markers:
                if not m.done():
                    m.set_result(None)

    @staticmethod
    def _take(item: Span | asyncio.Future[None], batch: list[Span], markers: list[asyncio.Future[None]]) -> None:
        if isinstance(item, Span):
            batch.append(item)
        else:
            markers.append(item)

    async def _write(self, batch: list[Span]) -> None:
        if not batch:
            return
        behind = self._queue.qsize() >= self._batch_size
        if behind:
            self.stats.catch_up_batches += 1
        pool = self._catch_up if behind else self._writer
        try:
            await asyncio.get_running_loop().run_in_executor(pool, self._store.insert_spans, batch)
            self.stats.written += len(batch)
        except Exception:  # task boundary: log, count, keep the writer alive
            self.stats.failed_batches += 1
            log.exception("writing %d spans failed; batch dropped", len(batch))
