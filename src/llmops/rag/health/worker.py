"""The background incremental check: ingest queues the changed documents and returns; one task checks them.

- durable: the queue is a row per collection in the findings store (``add_pending``), written before the
  ingest answers, so a restart picks up what was left (``start`` drains existing rows first);
- bounded and coalescing: one row per collection merges the document ids of every ingest until the check
  runs; past ``max_pending_documents`` the row turns into "check the whole collection";
- debounced: after a wake-up the worker waits ``debounce_s`` so that a burst of ingest batches is checked once;
- visible: :meth:`status` (``GET /api/rag/{collection}/check``) tells queued / running / idle / error and the
  last run's figures.

A failed check stays queued and is retried with a growing delay (up to ``max_attempts``), then dropped with
its error in the status; a collection deleted meanwhile is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import NotFoundError
from llmops.rag.health.store import FindingStore, PendingCheck

if TYPE_CHECKING:
    from llmops.rag.health.service import HealthService

log = logging.getLogger("llmops.rag.health")


@dataclass
class LastRun:
    finished_ns: int
    seconds: float
    documents: int | None  # documents re-checked (None: the whole collection)
    findings: int
    error: str | None = None


class BackgroundChecker:
    def __init__(
        self,
        service: HealthService,
        store: FindingStore,
        *,
        debounce_s: float = 1.0,
        max_pending_documents: int = 1000,
        max_attempts: int = 3,
        clock: Clock | None = None,
    ) -> None:
        self._service = service
        self._store = store
        self._debounce_s = debounce_s
        self._max_pending = max_pending_documents
        self._max_attempts = max_attempts
        self._clock = clock or SystemClock()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: tuple[str, str] | None = None
        self._last: dict[tuple[str, str], LastRun] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self.checks_run = 0

    # --- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker on the running loop (idempotent); it first drains rows left by a previous process."""
        if self._task is not None and not self._task.done():
            return
        self._wake = asyncio.Event()
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="llmops-rag-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def started(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- queue ----------------------------------------------------------------------------------------------
    async def schedule(self, project_id: str, collection: str, document_ids: Sequence[str] | None) -> PendingCheck:
        """Queue ``document_ids`` (None: everything) of ``collection``; durable once this returns."""
        pending = await asyncio.to_thread(
            self._store.add_pending,
            project_id,
            collection,
            None if document_ids is None else list(document_ids),
            max_documents=self._max_pending,
            now_ns=self._clock.now_ns(),
        )
        self.start()
        assert self._wake is not None
        self._wake.set()
        return pending

    async def drain(self, timeout_s: float = 300.0) -> None:
        """Wait until nothing is queued or running (tests, benchmarks, shutdown of a batch job)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            pending = await asyncio.to_thread(self._store.list_pending)
            if not pending and self._running is None:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"{len(pending)} collection(s) still queued for the corpus-health check")
            await asyncio.sleep(0.05)

    def status(self, project_id: str, collection: str) -> dict[str, Any]:
        key = (project_id, collection)
        rows = self._store.list_pending(project_id, collection)
        last = self._last.get(key)
        if self._running == key:
            state = "running"
        elif rows:
            state = "queued"
        elif last is not None and last.error is not None:
            state = "error"
        else:
            state = "idle"
        row = rows[0] if rows else None
        return {
            "state": state,
            "worker": "running" if self.started else "stopped",
            "queued_documents": (len(row.document_ids) if row.document_ids is not None else None) if row else 0,
            "full_check_queued": bool(row and row.document_ids is None),
            "queued_since_ns": row.since_ns if row else None,
            "attempts": self._attempts.get(key, 0),
            "last": None
            if last is None
            else {
                "finished_ns": last.finished_ns,
                "seconds": round(last.seconds, 3),
                "documents": last.documents,
                "findings": last.findings,
                "error": last.error,
            },
        }

    # --- the worker -----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._debounce_s)
            self._wake.clear()
            try:
                rows = await asyncio.to_thread(self._store.list_pending)
            except Exception:  # a task boundary: a database hiccup must not end the worker
                log.exception("corpus-health queue unreadable; retrying")
                await asyncio.sleep(5)
                self._wake.set()
                continue
            retry = False
            for row in rows:
                retry |= await self._process(row)
            if retry:
                await asyncio.sleep(min(30.0, 2.0 ** max(self._attempts.values(), default=0)))
                self._wake.set()

    async def _process(self, row: PendingCheck) -> bool:
        """Check one queued collection; True when it failed and stays queued for a retry."""
        key = (row.project_id, row.collection)
        self._running = key
        started = self._clock.now_ns()
        try:
            result = await self._service.check(row.project_id, row.collection, document_ids=row.document_ids)
        except NotFoundError:  # the collection was deleted meanwhile: nothing to check
            await asyncio.to_thread(self._store.clear_pending, row.project_id, row.collection, row.token)
            return False
        except Exception as exc:  # a task boundary: log, keep the row, retry later
            log.exception("background corpus-health check failed for collection %r", row.collection)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            seconds = (self._clock.now_ns() - started) / 1e9
            docs = None if row.document_ids is None else len(row.document_ids)
            self._last[key] = LastRun(self._clock.now_ns(), seconds, docs, 0, f"{type(exc).__name__}: {exc}"[:500])
            if attempts >= self._max_attempts:
                await asyncio.to_thread(self._store.clear_pending, row.project_id, row.collection, row.token)
                self._attempts.pop(key, None)
                return False
            return True
        finally:
            self._running = None
        await asyncio.to_thread(self._store.clear_pending, row.project_id, row.collection, row.token)
        self._attempts.pop(key, None)
        self.checks_run += 1
        seconds = (self._clock.now_ns() - started) / 1e9
        docs = None if row.document_ids is None else len(row.document_ids)
        self._last[key] = LastRun(self._clock.now_ns(), seconds, docs, len(result.findings))
        return False
