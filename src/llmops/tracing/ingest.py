"""OTLP/HTTP trace ingest: ``POST /v1/traces`` bodies in, committed spans out.

Durability: a batch is acknowledged only after it is committed. :meth:`IngestService.export` decodes,
maps (``semconv``), redacts with the project's policy and builds rows in a worker process, which commits them
itself (two or more workers) or hands them to the server's writer thread (one worker), and returns only after
that transaction committed; it does not go through the fire-and-forget
:class:`~llmops.tracing.recorder.SpanRecorder`. A crash before the commit
loses nothing acknowledged (the client retries the same ids); span ids are idempotent in the store, so a
retried batch stores each span once.

Outcomes (the HTTP adapter turns them into the OTLP responses):

- every span stored, or some rejected and the rest stored -> :class:`IngestResult` (200; ``partial_success``
  names the rejected count and why);
- every span of a non-empty batch rejected, or the body undecodable -> :class:`InvalidInputError` (400);
- body larger than ``max_body_bytes`` after decompression -> :class:`PayloadTooLargeError` (413);
- an unknown Content-Type or Content-Encoding -> :class:`UnsupportedMediaTypeError` (415);
- the database unreachable -> :class:`StorageUnavailableError` (503 + Retry-After; nothing was stored).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import gc
import multiprocessing as mp
import os
import select
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from llmops.core.errors import (
    InvalidInputError,
    LlmopsError,
    PayloadTooLargeError,
    StorageUnavailableError,
    UnsupportedMediaTypeError,
)
from llmops.tracing._otlp import JSON, PROTOBUF, DecodeContext, Decoded, decode_json, decode_protobuf, export_response
from llmops.tracing.models import RedactionPolicy, Span
from llmops.tracing.privacy import Redactor

MediaType = str  # PROTOBUF or JSON


@dataclass(frozen=True)
class IngestResult:
    body: bytes
    media_type: MediaType
    accepted: int
    rejected: int
    stored: int  # new rows (accepted minus spans already stored by an earlier try)


@dataclass
class IngestStats:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    failed_requests: int = 0
    prepared_in_worker: int = 0  # batches decoded by a worker process (the rest: in the writer thread)
    committed_in_worker: int = 0  # of those, committed by the worker itself (two or more workers)


def media_type(content_type: str | None) -> MediaType:
    """The OTLP encoding of a request from its Content-Type; raises :class:`UnsupportedMediaTypeError`."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base == PROTOBUF:
        return PROTOBUF
    if base == JSON:
        return JSON
    raise UnsupportedMediaTypeError(
        f"Content-Type {base or 'missing'!r} is not supported; send {PROTOBUF!r} or {JSON!r}", param="content-type"
    )


def error_media_type(content_type: str | None) -> MediaType:
    """The encoding an error answer uses: the request's when it is JSON, else protobuf."""
    return JSON if "json" in (content_type or "").lower() else PROTOBUF


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after ``Content-Encoding`` (gzip, deflate or none), never more than ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        return body
    if enc not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {enc!r} is not supported; use gzip", param="content-encoding"
        )
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"body is not valid {enc} data: {exc}", code="invalid_encoding") from exc
    if len(out) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes after decompression")
    if not inflater.eof:
        raise InvalidInputError(f"{enc} body is truncated", code="invalid_encoding")
    return out


class RowWriter(Protocol):
    """What ingest needs of the store: a pure, picklable row builder and a writer of built rows."""

    @staticmethod
    def prepare_rows(batch: list[Span]) -> Any: ...

    def insert_prepared(self, prepared: Any) -> int: ...


@dataclass(frozen=True)
class _Job:
    body: bytes
    encoding: str | None
    media: MediaType
    ctx: DecodeContext
    max_body_bytes: int
    policy: RedactionPolicy
    prepare: Callable[[list[Span]], Any]


@dataclass(frozen=True)
class _Prepared:
    rows: Any
    response: bytes
    accepted: int
    rejected: int
    error_message: str


@dataclass(frozen=True)
class _Failed:
    """An LlmopsError from a worker, sent back as plain data (exceptions with keyword fields do not pickle)."""

    kind: str
    message: str
    param: str | None
    code: str | None


_ERRORS: dict[str, type[LlmopsError]] = {
    e.__name__: e for e in (InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError)
}


@functools.lru_cache(maxsize=64)
def _redactor(policy: RedactionPolicy) -> Redactor:
    return Redactor(policy)


def _prepare(job: _Job) -> _Prepared | _Failed:
    """Decompress, decode, map, redact and build rows: the CPU-bound part of ingest, run in a worker process
    (or in the writer thread when no process is configured). Touches no database."""
    try:
        raw = decompress(job.body, job.encoding, job.max_body_bytes)
        decoded: Decoded = decode_protobuf(raw, job.ctx) if job.media == PROTOBUF else decode_json(raw, job.ctx)
    except (InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError) as exc:
        return _Failed(type(exc).__name__, exc.message, exc.param, exc.code)
    redactor = _redactor(job.policy)
    clear = not redactor.active or (job.media == PROTOBUF and redactor.clears_protobuf(raw))
    spans = decoded.spans if clear else [redactor.span(s) for s in decoded.spans]
    rows = job.prepare(spans) if spans else None
    return _Prepared(rows, export_response(decoded, job.media), len(spans), decoded.rejected, decoded.error_message)


@dataclass(frozen=True)
class _Stored:
    """A batch a worker process committed itself."""

    response: bytes
    accepted: int
    rejected: int
    stored: int


# In a worker process that commits: its own store (own database connections) and the lock every ingest write
# transaction holds.
_worker_writer: tuple[RowWriter, WriteLock] | None = None


def _ready() -> bool:
    return True


# A worker's garbage collector: a batch builds ~30 containers per span that all live until the batch is done, so
# the default thresholds (700 allocations) ran young collections that walked them again and again (~3 % of a
# worker's CPU in a profile). Cycles are rare here; memory stays bounded by the batch size.
_WORKER_GC_THRESHOLD = (50_000, 20, 100)


def _init_worker(
    server_pid: int, writer: tuple[Callable[[], RowWriter], WriteLock] | None, started: Any | None = None
) -> None:
    """Worker initializer: pin the process to its own CPU (``started``: the pool's shared count of started
    workers; None: no pinning), open this process's own store (when it commits), end the process when the server
    ends, and set up the garbage collector for batch work (start-up objects frozen, out of every collection)."""
    global _worker_writer
    if started is not None:
        with started.get_lock():
            index = started.value
            started.value += 1
        pin_to_cpu(index)
    _exit_with(server_pid)
    _worker_writer = (writer[0](), writer[1]) if writer is not None else None
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_WORKER_GC_THRESHOLD)


def _ingest(job: _Job) -> _Stored | _Prepared | _Failed:
    """In a worker process: prepare the batch and, when the worker commits, commit it here (holding the shared
    write lock). A prepared batch is returned for the server's writer thread otherwise."""
    prepared = _prepare(job)
    writer = _worker_writer
    if writer is None or isinstance(prepared, _Failed) or (prepared.rejected and not prepared.accepted):
        return prepared
    store, lock = writer
    stored = 0
    if prepared.accepted:
        try:
            with lock:
                stored = store.insert_prepared(prepared.rows)
        except StorageUnavailableError as exc:
            return _Failed(type(exc).__name__, exc.message, exc.param, exc.code)
    return _Stored(prepared.response, prepared.accepted, prepared.rejected, stored)


def pin_to_cpu(index: int) -> int | None:
    """Pin this process to the ``index``-th CPU it may run on (round robin); returns that CPU, or None when there
    is only one or the system refuses. A worker that stays on one core keeps its caches warm: with two workers,
    the server and the clients sharing two cores, unpinned workers migrated between them and each span cost
    more CPU (pinned: ~9 % more spans/s in alternating runs, docs/benchmarks.md, issue 3)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        cpu = cpus[index % len(cpus)]
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):  # not Linux, or a sandbox that forbids it: run unpinned
        return None
    return cpu


def _exit_with(server_pid: int) -> None:
    """End this process when the server ends. A pool worker outlives a server that was killed (kill -9, OOM):
    its queues keep their own pipe ends open, so it never sees EOF, and it keeps the forkserver alive too."""
    threading.Thread(target=_watch, args=(server_pid,), name="llmops-ingest-watchdog", daemon=True).start()


def _watch(server_pid: int) -> None:
    try:
        fd = os.pidfd_open(server_pid)  # Linux >= 5.3: readable once the process has exited
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            time.sleep(1.0)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
    os._exit(0)


class WriteLock:
    """Exclusive across processes (``flock`` on a file) and across the threads of one process. The kernel drops
    the lock of a process that dies, so a worker killed mid-commit (OOM) cannot wedge ingest, as a semaphore
    held by a dead process would. Pickles as its path: each process opens its own descriptor."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self._threads = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self._path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class IngestService:
    """Decoding, mapping, redaction and row building are CPU-bound Python, so they run in worker processes
    (threads would contend for the GIL with the event loop).

    - ``workers >= 2`` (the default): each worker also commits its batch, through its own store (``worker_store``
      opens it in the worker) while holding a process-shared write lock; one worker commits while the others
      prepare. Rows never travel back to the server, and no server thread competes with the event loop for the
      GIL: ~1.25x the pipeline below on two cores, in alternating runs (docs/benchmarks.md, issue 3).
    - ``workers == 1``: the worker prepares batch k+1 while the server's one writer thread commits batch k.
    - ``workers == 0``: both stages in the writer thread (no extra process).

    Until every worker has answered a first task (start-up), and for a batch whose worker died, the writer
    thread does both stages, under the same write lock."""

    def __init__(
        self,
        store: RowWriter,
        *,
        redaction: Callable[[str], RedactionPolicy],
        max_body_bytes: int,
        max_value_chars: int,
        workers: int = 1,
        pin_workers: bool = False,
        worker_store: Callable[[], RowWriter] | None = None,
        lock_path: str | None = None,
    ) -> None:
        self._store = store
        # Two or more workers commit their own batches (side by side: one prepares while another commits); a
        # single worker only prepares and the writer thread commits, so that preparing and committing overlap.
        self._worker_store = worker_store if workers >= 2 else None
        self._prepare_rows = type(store).prepare_rows
        self._redaction = redaction
        self.max_body_bytes = max_body_bytes
        self._max_value_chars = max_value_chars
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-ingest")
        self._workers = workers
        self._pin_workers = pin_workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_ready: list[Future[bool]] = []
        self._pool_lock = threading.Lock()
        # Every ingest write transaction holds this lock (process-shared when workers write): a retried batch
        # prepared twice must not be checked-then-inserted twice at once (its trace aggregates would double).
        if self._worker_store is not None and not lock_path:
            raise ValueError("worker processes that write need a lock_path")
        self._write_lock: WriteLock | threading.Lock = (
            WriteLock(lock_path) if self._worker_store is not None and lock_path else threading.Lock()
        )
        self.stats = IngestStats()

    def start(self) -> None:
        """Start the worker process in the background (the app's start-up calls this; batches that arrive before
        it is ready are prepared in the writer thread, so a restarted server ingests at once)."""
        self._process_pool()

    def _worker_writer(self) -> tuple[Callable[[], RowWriter], WriteLock] | None:
        """What a worker that commits needs (None: workers only prepare)."""
        lock = self._write_lock
        return (self._worker_store, lock) if self._worker_store is not None and isinstance(lock, WriteLock) else None

    def worker_ready(self) -> bool:
        return self._process_pool() is not None

    def _process_pool(self) -> ProcessPoolExecutor | None:
        """The worker pool once it has answered its first (no-op) task, else None. forkserver, since forking a
        process with running threads is unsafe; created on first use when :meth:`start` was not called."""
        if self._workers <= 0:
            return None
        with self._pool_lock:
            if self._pool is None:
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(["llmops.tracing.ingest", "llmops.tracing._sql"])
                self._pool = ProcessPoolExecutor(
                    max_workers=self._workers,
                    mp_context=ctx,
                    initializer=_init_worker,
                    initargs=(os.getpid(), self._worker_writer(), ctx.Value("i", 0) if self._pin_workers else None),
                )
                # One task per worker, submitted together: the pool starts a process only when no worker is idle,
                # and its idle count keeps credits of finished tasks, so workers started on demand may never all
                # start (a "two-worker" pool ran on one under load).
                self._pool_ready = [self._pool.submit(_ready) for _ in range(self._workers)]
            ready = self._pool_ready
            return self._pool if all(f.done() and f.exception() is None for f in ready) else None

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    async def export(
        self, project_id: str, key_id: str | None, body: bytes, *, media: MediaType, encoding: str | None
    ) -> IngestResult:
        """Store one ``ExportTraceServiceRequest``; returns after the commit (see the module docstring)."""
        self.stats.requests += 1
        loop = asyncio.get_running_loop()
        policy = await loop.run_in_executor(None, self._redaction, project_id)  # may read the database
        ctx = DecodeContext(project_id, key_id, self._max_value_chars)
        job = _Job(body, encoding, media, ctx, self.max_body_bytes, policy, self._prepare_rows)
        try:
            pool = self._process_pool()
            if pool is not None:
                try:
                    prepared = await loop.run_in_executor(pool, _ingest, job)
                    self.stats.prepared_in_worker += 1
                except BrokenProcessPool:  # a worker died (OOM-killed, …): this batch runs in-thread
                    with self._pool_lock:  # and the next one starts a new pool
                        self._pool = None
                    prepared = await loop.run_in_executor(self._writer, _prepare, job)
            else:
                prepared = await loop.run_in_executor(self._writer, _prepare, job)
            if isinstance(prepared, _Stored):
                self.stats.committed_in_worker += 1
                result = IngestResult(prepared.response, media, prepared.accepted, prepared.rejected, prepared.stored)
            else:
                result = await loop.run_in_executor(self._writer, self._store_prepared, prepared, media)
        except Exception:
            self.stats.failed_requests += 1
            raise
        self.stats.accepted += result.accepted
        self.stats.rejected += result.rejected
        return result

    def _store_prepared(self, prepared: _Prepared | _Failed, media: MediaType) -> IngestResult:
        if isinstance(prepared, _Failed):
            if prepared.kind == StorageUnavailableError.__name__:  # a worker's commit failed: nothing was stored
                raise StorageUnavailableError(prepared.message)
            raise _ERRORS[prepared.kind](prepared.message, param=prepared.param, code=prepared.code)
        if prepared.rejected and not prepared.accepted:
            self.stats.rejected += prepared.rejected
            raise InvalidInputError(f"every span was rejected: {prepared.error_message}", code="invalid_spans")
        stored = 0
        if prepared.accepted:
            with self._write_lock:
                stored = self._store.insert_prepared(prepared.rows)
        return IngestResult(prepared.response, media, prepared.accepted, prepared.rejected, stored)
