"""OpenAI-compatible batches (``/v1/batches``): JSONL requests run in the background through the gateway.

Each line goes through :meth:`GatewayService.chat` / ``embeddings`` with the batch creator's principal, so routing,
caches, budgets and rate limits apply exactly as to live calls; its span carries ``llmops.batch_id``.

Priority: at most ``LLMOPS_BATCH_CONCURRENCY`` lines are in flight over all batches (one semaphore), and before each
line the runner waits (up to ``LLMOPS_BATCH_YIELD_MAX_S``) while live gateway requests are in flight
(:class:`LiveTraffic`, fed by the ASGI meter in ``batches_http``).

Durability: a line's result row (``batch_results``) is committed together with the counter it bumps, so a counted
line is never lost. On start-up, batches left ``validating``, ``in_progress``, ``cancelling`` or ``finalizing`` are
picked up again and resume after their last durable line. Delivery is at-least-once for lines that were in flight
when the process stopped (their upstream call may be made again); a line is never counted or written twice.

Lifecycle: validating → in_progress → finalizing → completed; failed (input unusable); cancelling → cancelled (lines
in flight finish, the files then hold what was done). ``expired`` is not produced: jobs run until done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from llmops.core.errors import ConflictError, InvalidInputError, LlmopsError, NotFoundError, error_envelope
from llmops.core.ids import new_id
from llmops.gateway.files import FileService, LineReader
from llmops.gateway.recording import CallContext, parse_tags
from llmops.gateway.service import GatewayService, Reply
from llmops.projects import Principal

log = logging.getLogger("llmops.gateway.batches")

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
READ_AHEAD = 64
MAX_METADATA = 16


@dataclass
class Batch:
    batch_id: str
    project_id: str
    key_id: str
    key_name: str
    is_admin: bool
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    metadata: dict[str, str] | None
    errors: list[dict[str, Any]] | None
    total: int
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    expires_at: int | None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    runner_id: str | None = None  # the process running it (lease), not part of the OpenAI object
    lease_until: int | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.project_id, self.key_id, self.key_name, self.is_admin)

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.batch_id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": None,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


class BatchStore(Protocol):
    def insert_batch(self, batch: Batch) -> None: ...
    def find_batch(self, batch_id: str, project_id: str | None = None) -> Batch | None: ...
    def list_batches(self, project_id: str, *, after: str | None, limit: int) -> list[Batch]: ...
    def active_batches(self) -> list[Batch]: ...
    def transition(self, batch_id: str, from_status: tuple[str, ...], to_status: str, **fields: Any) -> bool: ...
    def record_result(self, batch_id: str, line_no: int, custom_id: str | None, ok: bool, line: bytes) -> bool: ...
    def done_lines(self, batch_id: str) -> set[int]: ...
    def claim(self, batch_id: str, runner_id: str, now: int, lease_s: int) -> bool: ...
    def renew(self, runner_id: str, now: int, lease_s: int) -> None: ...
    def release(self, runner_id: str, batch_id: str | None = None) -> None: ...
    def result_lines(self, batch_id: str, *, ok: bool) -> list[bytes]: ...


@dataclass
class LiveTraffic:
    """Live gateway requests in flight (counted by the ASGI meter); batch lines wait while it is above zero."""

    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def wait_idle(self, max_s: float) -> None:
        if self.in_flight == 0 or max_s <= 0:
            return
        try:
            async with asyncio.timeout(max_s):
                await self._idle.wait()
        except TimeoutError:
            pass


class LineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def parse_line(raw: bytes, endpoint: str) -> tuple[str, dict[str, Any]]:
    """``(custom_id, body)`` of one input line, or :class:`LineError` saying what is wrong with it."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LineError("invalid_json", f"line is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise LineError("invalid_request", "line must be a JSON object")
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        raise LineError("missing_custom_id", "custom_id must be a non-empty string (at most 512 characters)")
    if obj.get("method") != "POST":
        raise LineError("invalid_method", f"method must be 'POST', got {obj.get('method')!r}")
    if obj.get("url") != endpoint:
        raise LineError("mismatched_url", f"url {obj.get('url')!r} does not match the batch endpoint {endpoint!r}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise LineError("invalid_body", "body must be a JSON object")
    if body.get("stream"):
        raise LineError("invalid_body", "stream is not supported in batches")
    return custom_id, body


def _custom_id(raw: bytes) -> str | None:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("custom_id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def validate_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA:
        raise InvalidInputError(f"metadata must be an object of at most {MAX_METADATA} pairs", param="metadata")
    for k, v in metadata.items():
        if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
            raise InvalidInputError(
                "metadata keys are at most 64 characters, values strings of at most 512", param="metadata"
            )
    return dict(metadata)


class BatchService:
    """Create / read / cancel batches and run them (one asyncio task per active batch)."""

    def __init__(
        self,
        store: BatchStore,
        files: FileService,
        gateway: GatewayService,
        *,
        concurrency: int = 2,
        yield_max_s: float = 1.0,
        lease_s: int = 30,
        live: LiveTraffic | None = None,
    ) -> None:
        self._store = store
        self._files = files
        self._gateway = gateway
        self._concurrency = concurrency
        self._yield_max_s = yield_max_s
        self.live = live or LiveTraffic()
        self._slots: asyncio.Semaphore | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: set[str] = set()
        self._started = False
        self._lease_s = lease_s
        self._runner_id = new_id("runner")
        self._keeper: asyncio.Task[None] | None = None

    # --- use cases --------------------------------------------------------------------------------------------
    async def create(
        self, who: Principal, *, input_file_id: str, endpoint: str, completion_window: str, metadata: Any = None
    ) -> Batch:
        if endpoint not in ENDPOINTS:
            raise InvalidInputError(
                f"endpoint {endpoint!r} is not supported; use one of {', '.join(ENDPOINTS)}",
                param="endpoint",
                code="invalid_endpoint",
            )
        if completion_window != "24h":
            raise InvalidInputError("completion_window must be '24h'", param="completion_window")
        meta = validate_metadata(metadata)
        record = await self._files.get(who.project_id, input_file_id)
        if record.purpose != "batch":
            raise InvalidInputError(
                f"file {input_file_id!r} has purpose {record.purpose!r}; upload it with purpose 'batch'",
                param="input_file_id",
            )
        now = int(time.time())
        batch = Batch(
            new_id("batch"), who.project_id, who.key_id, who.key_name, who.is_admin, endpoint, input_file_id,
            completion_window, "validating", meta, None, 0, 0, 0, None, None, now, now + 86_400,
        )  # fmt: skip
        if self._started:  # born leased to this process: no other replica adopts it before the runner starts
            batch.runner_id, batch.lease_until = self._runner_id, now + self._lease_s
        await asyncio.to_thread(self._store.insert_batch, batch)
        self._launch(batch.batch_id)
        return batch

    async def get(self, project_id: str, batch_id: str) -> Batch:
        batch = await asyncio.to_thread(self._store.find_batch, batch_id, project_id)
        if batch is None:
            raise NotFoundError(f"No batch found with id {batch_id!r}", param="batch_id", code="batch_not_found")
        return batch

    async def list_batches(
        self, project_id: str, *, after: str | None = None, limit: int = 20
    ) -> tuple[list[Batch], bool]:
        rows = await asyncio.to_thread(lambda: self._store.list_batches(project_id, after=after, limit=limit + 1))
        return rows[:limit], len(rows) > limit

    async def cancel(self, project_id: str, batch_id: str) -> Batch:
        batch = await self.get(project_id, batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return batch
        moved = await asyncio.to_thread(
            lambda: self._store.transition(
                batch_id, ("validating", "in_progress"), "cancelling", cancelling_at=int(time.time())
            )
        )
        if not moved:
            raise ConflictError(
                f"batch {batch_id!r} is {batch.status} and cannot be cancelled", code="batch_not_active"
            )
        self._cancel.add(batch_id)
        if batch_id not in self._tasks:
            self._launch(batch_id)
        return await self.get(project_id, batch_id)

    # --- runner -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Pick up every active batch no live process holds (now, then every lease/3 s, renewing own leases)."""
        self._slots = asyncio.Semaphore(self._concurrency)
        self._started = True
        await self._adopt()
        self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="batch lease keeper")

    async def stop(self) -> None:
        """Stop the runners and give their leases back; lines in flight are not counted and run again later."""
        self._started = False
        tasks = [t for t in (self._keeper, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.to_thread(self._store.release, self._runner_id)

    async def _adopt(self) -> None:
        for batch in await asyncio.to_thread(self._store.active_batches):
            if batch.batch_id not in self._tasks and (batch.lease_until or 0) < time.time():
                self._launch(batch.batch_id)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await asyncio.to_thread(self._store.renew, self._runner_id, int(time.time()), self._lease_s)
                await self._adopt()
            except Exception:  # task boundary: a database hiccup must not end the keeper
                log.warning("batch lease keeper failed", exc_info=True)

    async def wait(self, batch_id: str) -> None:
        """Until this process's runner of ``batch_id`` is done (tests, benchmarks)."""
        task = self._tasks.get(batch_id)
        if task is not None:
            await asyncio.shield(task)

    def _launch(self, batch_id: str) -> None:
        if not self._started or batch_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._run(batch_id), name=f"batch {batch_id}")
        self._tasks[batch_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(batch_id, None))

    async def _run(self, batch_id: str) -> None:
        try:
            now = int(time.time())
            if not await asyncio.to_thread(self._store.claim, batch_id, self._runner_id, now, self._lease_s):
                return  # another live process runs it
            batch = await asyncio.to_thread(self._store.find_batch, batch_id)
            if batch is None:
                return
            if batch.status == "validating":
                batch = await self._validate(batch)
            if batch.status == "in_progress":
                await self._process(batch)
                batch = await self.get(batch.project_id, batch_id)
                if batch.status == "in_progress":
                    await asyncio.to_thread(
                        lambda: self._store.transition(
                            batch_id, ("in_progress",), "finalizing", finalizing_at=int(time.time())
                        )
                    )
                batch = await self.get(batch.project_id, batch_id)
            if batch.status in ("finalizing", "cancelling"):
                await self._finalize(batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # task boundary: log with context; the lease is given back, the keeper retries later
            log.exception("batch %s: runner failed", batch_id)
        await asyncio.to_thread(self._store.release, self._runner_id, batch_id)

    async def _validate(self, batch: Batch) -> Batch:
        total, error = await asyncio.to_thread(self._count_lines, batch)
        now = int(time.time())
        if error is not None:
            await asyncio.to_thread(
                lambda: self._store.transition(
                    batch.batch_id, ("validating",), "failed", failed_at=now, errors=[error], total=total
                )
            )
        else:
            await asyncio.to_thread(
                lambda: self._store.transition(
                    batch.batch_id, ("validating",), "in_progress", in_progress_at=now, total=total
                )
            )
        return await self.get(batch.project_id, batch.batch_id)

    def _count_lines(self, batch: Batch) -> tuple[int, dict[str, Any] | None]:
        path = self._files.path(batch.input_file_id)
        if not path.exists():
            return 0, {
                "code": "file_not_found",
                "message": f"input file {batch.input_file_id!r} is gone",
                "param": None,
                "line": None,
            }
        reader = LineReader(path)
        try:
            total = 0
            while chunk := reader.read(4096):
                total += len(chunk)
        finally:
            reader.close()
        if total == 0:
            return 0, {"code": "empty_file", "message": "the input file holds no request", "param": None, "line": None}
        return total, None

    async def _process(self, batch: Batch) -> None:
        assert self._slots is not None
        done = await asyncio.to_thread(self._store.done_lines, batch.batch_id)
        reader = LineReader(self._files.path(batch.input_file_id))
        seen: set[str] = set()
        checks = 0
        try:
            async with asyncio.TaskGroup() as tg:
                while chunk := await asyncio.to_thread(reader.read, READ_AHEAD):
                    for line_no, raw in chunk:
                        custom_id = _custom_id(raw)
                        duplicate = custom_id is not None and custom_id in seen
                        if custom_id is not None:
                            seen.add(custom_id)
                        if line_no in done:
                            continue
                        await self._slots.acquire()
                        checks += 1
                        if batch.batch_id in self._cancel or (checks % 32 == 0 and not await self._running(batch)):
                            self._slots.release()
                            return
                        await self.live.wait_idle(self._yield_max_s)
                        tg.create_task(self._line(batch, line_no, raw, duplicate))
        finally:
            reader.close()

    async def _running(self, batch: Batch) -> bool:
        """Still ``in_progress`` in the database (another process may have cancelled it)."""
        now = await asyncio.to_thread(self._store.find_batch, batch.batch_id)
        return now is not None and now.status == "in_progress"

    async def _line(self, batch: Batch, line_no: int, raw: bytes, duplicate: bool) -> None:
        assert self._slots is not None
        try:
            ok, custom_id, out = await self._call(batch, raw, duplicate)
            await asyncio.to_thread(
                self._store.record_result, batch.batch_id, line_no, custom_id, ok, orjson.dumps(out)
            )
        finally:
            self._slots.release()

    async def _call(self, batch: Batch, raw: bytes, duplicate: bool) -> tuple[bool, str | None, dict[str, Any]]:
        line_id = new_id("batch_req")
        try:
            custom_id, body = parse_line(raw, batch.endpoint)
            if duplicate:
                raise LineError("duplicate_custom_id", f"custom_id {custom_id!r} appears earlier in the file")
        except LineError as exc:
            error = {"code": exc.code, "message": exc.message}
            return (
                False,
                _custom_id(raw),
                {"id": line_id, "custom_id": _custom_id(raw), "response": None, "error": error},
            )
        ctx = self._context(batch, body)
        try:
            if batch.endpoint == "/v1/embeddings":
                reply: Any = await self._gateway.embeddings(ctx, body)
            else:
                reply = await self._gateway.chat(ctx, body)
            if not isinstance(reply, Reply):  # parse_line refuses stream=true; a stream here is a bug
                raise InvalidInputError("stream is not supported in batches", param="stream")
        except LlmopsError as exc:
            status, _, envelope = error_envelope(exc)
            response = {"status_code": status, "request_id": ctx.request_id, "body": envelope}
            return False, custom_id, {"id": line_id, "custom_id": custom_id, "response": response, "error": None}
        except Exception as exc:  # task boundary: one line's bug fails that line only
            log.exception("batch %s: line %r failed", batch.batch_id, custom_id)
            error = {"code": "internal_error", "message": f"internal error: {type(exc).__name__}"}
            return False, custom_id, {"id": line_id, "custom_id": custom_id, "response": None, "error": error}
        response = {"status_code": 200, "request_id": ctx.request_id, "body": reply.body}
        return True, custom_id, {"id": line_id, "custom_id": custom_id, "response": response, "error": None}

    def _context(self, batch: Batch, body: dict[str, Any]) -> CallContext:
        user = body.get("user")
        return CallContext.internal(
            batch.principal,
            user_id=str(user)[:256] if user else None,
            attributes={"llmops.batch_id": batch.batch_id},
            tags=parse_tags(None, body),
        )

    async def _finalize(self, batch: Batch) -> None:
        """Write the output and error files from the durable results, then the final status."""
        outputs = await asyncio.to_thread(self._store.result_lines, batch.batch_id, ok=True)
        errors = await asyncio.to_thread(self._store.result_lines, batch.batch_id, ok=False)
        output_id = error_id = None
        if outputs:
            rec = await self._files.create_from_lines(
                batch.project_id, filename=f"{batch.batch_id}_output.jsonl", lines=outputs
            )
            output_id = rec.file_id
        if errors:
            rec = await self._files.create_from_lines(
                batch.project_id, filename=f"{batch.batch_id}_error.jsonl", lines=errors
            )
            error_id = rec.file_id
        now = int(time.time())
        final, stamp = ("cancelled", "cancelled_at") if batch.status == "cancelling" else ("completed", "completed_at")
        await asyncio.to_thread(
            lambda: self._store.transition(
                batch.batch_id, (batch.status,), final, output_file_id=output_id, error_file_id=error_id, **{stamp: now}
            )
        )
        self._cancel.discard(batch.batch_id)
