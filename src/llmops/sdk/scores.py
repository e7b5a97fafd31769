"""``llmops.score(...)``: feedback and evaluation results, posted to ``POST /api/scores`` in the background.

- **Never blocks, never raises**: ``score`` validates, puts the score on a bounded queue (dropped and logged
  when full) and returns its idempotency key; one daemon thread posts the queue in order.
- **Idempotent retries**: every score carries an idempotency key (generated when not given), so a retry after
  a timeout cannot store it twice. Retried: connection errors, 404 (the trace or span has not reached the
  server yet: spans are exported in batches and ingested asynchronously), 408, 425, 429 and 5xx, with
  exponential backoff, for up to ``retry_window_s`` after the call. Other answers (400, 401, 422, ...)
  are logged and the score dropped.
- Before each try, the worker flushes the span exporter, so the spans a score refers to travel first.
- ``flush()`` waits until the queue is empty (bounded by its timeout); ``close()`` flushes, then stops the
  thread: a score still retrying then is given up (and logged).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace

from llmops.sdk import runtime

log = logging.getLogger("llmops.sdk")

ScoreSource = Literal["user", "human", "llm_judge", "code"]
SOURCES = ("user", "human", "llm_judge", "code")
RETRY_STATUS = frozenset({404, 408, 425, 429})
MAX_QUEUE = 10_000


@dataclass(frozen=True, slots=True)
class _Pending:
    body: dict[str, Any]
    deadline: float  # monotonic: retry until then


class ScoreSender:
    """A bounded queue of scores and the daemon thread that posts them (started on the first score)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        flush_spans: Callable[[], None],
        transport: Any = None,
        timeout_s: float = 10.0,
        max_queue: int = MAX_QUEUE,
        retry_window_s: float = 30.0,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._flush_spans = flush_spans
        self._transport = transport
        self._timeout_s = timeout_s
        self._retry_window_s = retry_window_s
        self._queue: queue.Queue[_Pending | None] = queue.Queue(max_queue)
        self._lock = threading.Condition()
        self._unfinished = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0

    def submit(self, body: dict[str, Any]) -> bool:
        with self._lock:
            if self._closed:
                return False
            try:
                self._queue.put_nowait(_Pending(body, time.monotonic() + self._retry_window_s))
            except queue.Full:
                self.dropped += 1
                log.warning("llmops: score queue full (%d); score %r dropped", self._queue.maxsize, body["name"])
                return False
            self._unfinished += 1
            if self._thread is None or not self._thread.is_alive():  # not alive: first score, or after a fork
                self._thread = threading.Thread(target=self._run, name="llmops-scores", daemon=True)
                self._thread.start()
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every submitted score was sent or given up; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def close(self, timeout_s: float) -> bool:
        ok = self.flush(timeout_s)
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass  # the worker sees _stop after its current item and drains without sending
            thread.join(timeout_s)
        return ok

    def _run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"}
        with httpx.Client(
            base_url=self._base_url, headers=headers, timeout=self._timeout_s, transport=self._transport
        ) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                try:
                    if not self._stop.is_set():
                        self._deliver(client, item)
                    else:
                        self.dropped += 1
                except Exception:  # task boundary: log, count, go on
                    self.dropped += 1
                    log.exception("llmops: score %r not sent", item.body.get("name"))
                finally:
                    with self._lock:
                        self._unfinished -= 1
                        self._lock.notify_all()

    def _deliver(self, client: Any, item: _Pending) -> None:
        delay = 0.1
        while True:
            self._flush_spans()  # a span that ended since the last try goes out before the score
            status, detail = self._post(client, item.body)
            if status is not None and status < 300:
                self.sent += 1
                return
            retry = status is None or status in RETRY_STATUS or status >= 500
            if not retry or time.monotonic() + delay > item.deadline or self._stop.is_set():
                self.dropped += 1
                log.warning("llmops: score %r not sent (%s): %s", item.body["name"], status or "no answer", detail)
                return
            self._stop.wait(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _post(client: Any, body: dict[str, Any]) -> tuple[int | None, str]:
        import httpx

        try:
            response = client.post("/api/scores", json=body)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text[:300]


def _check(name: Any, value: Any, source: Any) -> str | None:
    """Why the score is invalid, or None."""
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if not isinstance(value, bool | int | float | str):
        return f"value must be a number, a bool or a string, not {type(value).__name__}"
    if source not in SOURCES:
        return f"source must be one of {', '.join(SOURCES)}"
    return None


def score(
    name: str,
    value: float | bool | str,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    comment: str | None = None,
    source: ScoreSource = "code",
    idempotency_key: str | None = None,
) -> str | None:
    """Queue a score for a trace (default: the current one) or span (default: the current span when the trace
    is the current one). Returns the idempotency key, or None when the score was dropped (logged, never raised).
    """
    try:
        rt = runtime._runtime
        if rt is None or rt.scores is None:
            log.warning("llmops: score %r dropped: llmops.init() was not called (with an API key)", name)
            return None
        problem = _check(name, value, source)
        if trace_id is None:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                trace_id = format(ctx.trace_id, "032x")
                span_id = span_id or format(ctx.span_id, "016x")
            else:
                problem = problem or "no trace_id given and no current span"
        if problem:
            log.warning("llmops: score %r dropped: %s", name, problem)
            return None
        key = idempotency_key or f"sdk-{uuid.uuid4().hex}"
        body = {"trace_id": trace_id, "span_id": span_id, "name": name, "value": value, "source": source}
        body.update(comment=comment, idempotency_key=key)
        return key if rt.scores.submit(body) else None
    except Exception:  # SDK boundary
        log.exception("llmops: score %r dropped", name)
        return None
