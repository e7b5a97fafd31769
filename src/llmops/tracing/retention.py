"""Retention: a background job that deletes each project's traces older than its TTL, so the store never grows
without bound.

Every ``interval_s`` (and once shortly after start) it walks the projects; for each it deletes traces that
*started* before ``now - retention_days`` (the project's setting, else ``LLMOPS_TRACING_RETENTION_DAYS``;
0 keeps forever) together with their spans, full-text rows and scores, ``batch_size`` traces per
transaction, so ingest never waits long for the write lock. Deleting by trace keeps traces whole: a trace
is never left with half its spans. A span arriving later for a deleted trace starts a new trace row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from llmops.core.clock import Clock, SystemClock
from llmops.tracing.privacy import TraceSettingsService
from llmops.tracing.store import TraceStore

log = logging.getLogger("llmops.tracing")
DAY_NS = 86_400 * 10**9
FIRST_RUN_DELAY_S = 5.0


@dataclass
class RetentionStats:
    runs: int = 0
    deleted_traces: int = 0
    failed_runs: int = 0


class RetentionJob:
    def __init__(
        self,
        store: TraceStore,
        settings: TraceSettingsService,
        project_ids: Callable[[], list[str]],
        *,
        interval_s: float,
        batch_size: int = 500,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._project_ids = project_ids
        self._interval = interval_s
        self._batch = batch_size
        self._clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None
        self.stats = RetentionStats()

    def run_once(self) -> int:
        """Delete every expired trace now (blocking; call in a worker thread). Returns traces deleted."""
        deleted = 0
        now = self._clock.now_ns()
        for project_id in self._project_ids():
            days = self._settings.retention_days(project_id)
            if days <= 0:
                continue
            while True:
                n = self._store.delete_traces_before(project_id, now - days * DAY_NS, limit=self._batch)
                deleted += n
                if n < self._batch:
                    break
        self.stats.runs += 1
        self.stats.deleted_traces += deleted
        return deleted

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llmops-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(min(FIRST_RUN_DELAY_S, self._interval))
        while True:
            try:
                deleted = await asyncio.to_thread(self.run_once)
                if deleted:
                    log.info("retention: deleted %d expired traces", deleted)
            except Exception:  # task boundary: log, count, try again next interval
                self.stats.failed_runs += 1
                log.exception("retention run failed")
            await asyncio.sleep(self._interval)
