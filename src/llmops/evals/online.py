"""Online evaluation: rules that sample production traces as they are recorded and score them in the background.

A rule has a filter (model, trace name, tags; the project is the rule's own), a ``sample_rate`` in [0, 1], a
``delay_s`` (a trace is considered only once it started at least that long ago, so its spans are written) and
one or more scorer specs (anything the evaluator registry builds). Results land as trace scores through
:class:`~llmops.tracing.ScoreService` (source ``code``, or ``llm_judge`` for judge scorers), so the dashboards
and judge calibration see them.

How it runs (:class:`OnlineWorker`, started and stopped in the app's lifespan): a poller reads, per enabled rule,
the traces that started after the rule's cursor and before ``now - delay_s`` (oldest first), samples them with a
hash of (rule, trace) — the same decision after a restart — and puts jobs on one bounded queue. A full queue
drops the job and counts it (``dropped``): the backlog never grows without bound. One consumer scores jobs in
order and persists the rule's cursor (``cursor_ns``, ``cursor_trace_id``) every ``SAVE_EVERY`` jobs, when the
rule's jobs are drained and at each poll's checkpoint, so a restart neither rescores nor skips what was
accepted; score idempotency keys (``online:{rule}:{trace}:{name}``) make a replay after a crash harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError, LlmopsError, NotFoundError
from llmops.core.ids import new_id
from llmops.evals.models import EvalCase, Evaluator, ScoreResult
from llmops.evals.review import text_of
from llmops.tracing import NewScore, ScoreService, TraceFilter, TraceService, TraceSummary, main_span

log = logging.getLogger("llmops.evals.online")
MAX_SCORERS = 10
SAVE_EVERY = 32  # jobs between two cursor writes of a busy rule
WINDOW_FACTOR = 4  # traces read per poll window, as a multiple of max_traces_per_poll
MAX_COMMENT = 4000

EvaluatorFactory = Callable[[Mapping[str, Any], str], Evaluator]
"""Builds a scorer from its spec for a project (the evaluator registry's ``create_evaluator`` with the app's deps
bound; judges' own calls are recorded in that project under the key id :data:`ONLINE_KEY_ID`); raises
:class:`InvalidInputError` for an unknown scorer or a bad spec."""
ONLINE_KEY_ID = "key_online_eval"  # traces made by online scorers (judge calls) are never scored themselves


@dataclass(frozen=True)
class RuleFilter:
    model: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "tags": list(self.tags)}


@dataclass(frozen=True)
class OnlineRule:
    rule_id: str
    project_id: str
    name: str
    filter: RuleFilter
    sample_rate: float
    delay_s: float
    scorers: tuple[Mapping[str, Any], ...]
    enabled: bool
    cursor_ns: int
    cursor_trace_id: str
    scored: int
    failed: int
    created_ns: int


@dataclass(frozen=True)
class NewRule:
    name: str
    scorers: Sequence[Mapping[str, Any]]
    filter: RuleFilter = field(default_factory=RuleFilter)
    sample_rate: float = 1.0
    delay_s: float = 30.0
    enabled: bool = True
    start_ns: int | None = None  # score traces from this time on (default: from the rule's creation)


class OnlineRuleStore(Protocol):
    def insert_rule(self, rule: OnlineRule) -> None:
        """Raises :class:`ConflictError` when the name is taken in the project."""
        ...

    def list_rules(self, project_id: str | None) -> list[OnlineRule]:
        """A project's rules, or every project's (the worker) when ``project_id`` is None."""
        ...

    def find_rule(self, project_id: str, rule_id: str) -> OnlineRule | None: ...

    def set_enabled(self, project_id: str, rule_id: str, enabled: bool) -> bool: ...

    def delete_rule(self, project_id: str, rule_id: str) -> bool: ...

    def advance(self, rule_id: str, cursor: tuple[int, str], *, scored: int, failed: int) -> None:
        """Persist the cursor (never moving it back) and add to the counters."""
        ...


def sampled(rule_id: str, trace_id: str, rate: float) -> bool:
    """Deterministic: the same (rule, trace) is always in or out, across restarts and replicas."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(f"{rule_id}:{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def _check_rule(new: NewRule, factory: EvaluatorFactory | None, project_id: str) -> None:
    if not new.name.strip() or len(new.name) > 200:
        raise InvalidInputError("name must be 1-200 characters", param="name")
    if not 0.0 <= new.sample_rate <= 1.0:
        raise InvalidInputError("sample_rate must be between 0 and 1", param="sample_rate")
    if not 0.0 <= new.delay_s <= 86_400:
        raise InvalidInputError("delay_s must be between 0 and 86400", param="delay_s")
    if not 1 <= len(new.scorers) <= MAX_SCORERS:
        raise InvalidInputError(f"a rule needs 1-{MAX_SCORERS} scorers", param="scorers")
    if factory is None:
        raise InvalidInputError("no scorers are available on this server", param="scorers")
    for spec in new.scorers:
        factory(spec, project_id)  # raises InvalidInputError for an unknown scorer or a bad spec


class OnlineRuleService:
    def __init__(
        self, store: OnlineRuleStore, *, evaluators: EvaluatorFactory | None, clock: Clock | None = None
    ) -> None:
        self._store = store
        self._evaluators = evaluators
        self._clock = clock or SystemClock()

    async def create_rule(self, project_id: str, new: NewRule) -> OnlineRule:
        _check_rule(new, self._evaluators, project_id)
        now = self._clock.now_ns()
        rule = OnlineRule(
            new_id("orule"),
            project_id,
            new.name.strip(),
            new.filter,
            new.sample_rate,
            new.delay_s,
            tuple(dict(s) for s in new.scorers),
            new.enabled,
            now if new.start_ns is None else new.start_ns,
            "",
            0,
            0,
            now,
        )
        await asyncio.to_thread(self._store.insert_rule, rule)
        return rule

    async def list_rules(self, project_id: str) -> list[OnlineRule]:
        return await asyncio.to_thread(self._store.list_rules, project_id)

    async def get_rule(self, project_id: str, rule_id: str) -> OnlineRule:
        rule = await asyncio.to_thread(self._store.find_rule, project_id, rule_id)
        if rule is None:
            raise NotFoundError(f"online rule {rule_id!r} not found", param="rule_id")
        return rule

    async def set_enabled(self, project_id: str, rule_id: str, enabled: bool) -> OnlineRule:
        if not await asyncio.to_thread(self._store.set_enabled, project_id, rule_id, enabled):
            raise NotFoundError(f"online rule {rule_id!r} not found", param="rule_id")
        return await self.get_rule(project_id, rule_id)

    async def delete_rule(self, project_id: str, rule_id: str) -> None:
        if not await asyncio.to_thread(self._store.delete_rule, project_id, rule_id):
            raise NotFoundError(f"online rule {rule_id!r} not found", param="rule_id")


@dataclass
class WorkerStats:
    polls: int = 0
    enqueued: int = 0
    dropped: int = 0
    scored: int = 0
    failed: int = 0
    dropped_by_rule: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    rule: OnlineRule
    trace: TraceSummary


@dataclass(frozen=True)
class _Checkpoint:
    rule_id: str
    cursor: tuple[int, str]


class OnlineWorker:
    """The poller and the single consumer (see the module docstring). ``run_once`` polls every rule and waits
    until the queue is drained: tests and the CLI use it instead of sleeping."""

    def __init__(
        self,
        store: OnlineRuleStore,
        traces: TraceService,
        scores: ScoreService,
        evaluators: EvaluatorFactory | None,
        *,
        queue_size: int = 1000,
        poll_interval_s: float = 2.0,
        max_traces_per_poll: int = 500,
        score_timeout_s: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._traces = traces
        self._scores = scores
        self._evaluators = evaluators
        self._queue: asyncio.Queue[_Job | _Checkpoint] = asyncio.Queue(maxsize=queue_size)
        self._poll_interval_s = poll_interval_s
        self._max_per_poll = max_traces_per_poll
        self._timeout_s = score_timeout_s
        self._clock = clock or SystemClock()
        self._enqueued_to: dict[str, tuple[int, str]] = {}  # rule -> last trace handed to the queue
        self._built: dict[str, Evaluator] = {}
        self._pending: dict[str, int] = {}  # rule -> its jobs waiting in the queue
        self._unsaved: dict[str, list[int]] = {}  # rule -> [scored, failed, jobs] not yet persisted
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = WorkerStats()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def health(self) -> dict[str, int]:
        """Totals over every project (for ``/readyz``: no rule ids, nothing tenant-specific)."""
        s = self.stats
        return {
            "backlog": self.backlog,
            "polls": s.polls,
            "enqueued": s.enqueued,
            "dropped": s.dropped,
            "scored": s.scored,
            "failed": s.failed,
        }

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._poll_loop()), asyncio.create_task(self._consume_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run_once(self) -> None:
        await self.poll()
        if not self._tasks:
            while not self._queue.empty():
                await self._handle(self._queue.get_nowait())
                self._queue.task_done()
        await self._queue.join()

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # task boundary: log, count, go on
                log.exception("online evaluation poll failed")
            await asyncio.sleep(self._poll_interval_s)

    async def _consume_loop(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._handle(job)
            except Exception:  # task boundary
                log.exception("online evaluation job failed")
            finally:
                self._queue.task_done()

    async def poll(self) -> None:
        self.stats.polls += 1
        for rule in await asyncio.to_thread(self._store.list_rules, None):
            if rule.enabled:
                await self._poll_rule(rule)

    async def _poll_rule(self, rule: OnlineRule) -> None:
        persisted = (rule.cursor_ns, rule.cursor_trace_id)
        after = max(persisted, self._enqueued_to.get(rule.rule_id, persisted))
        end_ns = self._clock.now_ns() - int(rule.delay_s * 1e9)
        if end_ns <= after[0]:
            return
        candidates = await self._candidates(rule, after, end_ns)
        if not candidates:
            return
        for trace in candidates:
            if rule.filter.name is not None and trace.name != rule.filter.name:
                continue
            if trace.key_id == ONLINE_KEY_ID:
                continue
            if not sampled(rule.rule_id, trace.trace_id, rule.sample_rate):
                continue
            self._offer(_Job(rule, trace))
        last = (candidates[-1].start_ns, candidates[-1].trace_id)
        self._enqueued_to[rule.rule_id] = last
        if self._pending.get(rule.rule_id, 0) == 0:  # nothing of this rule queued: the cursor moves now
            await asyncio.to_thread(self._store.advance, rule.rule_id, last, scored=0, failed=0)
        else:  # after the rule's queued jobs are scored
            self._offer(_Checkpoint(rule.rule_id, last), count=False)

    async def _candidates(self, rule: OnlineRule, after: tuple[int, str], end_ns: int) -> list[TraceSummary]:
        """Traces in (after, end) oldest first, at most ``max_traces_per_poll`` (the rest wait for the next poll).
        The store lists newest first, so a window holding more than ``WINDOW_FACTOR`` × that is narrowed to end
        at the oldest trace read, until the whole window fits: the oldest traces are never skipped."""
        cap = WINDOW_FACTOR * self._max_per_poll
        while True:
            flt = TraceFilter(start_ns=after[0], end_ns=end_ns, model=rule.filter.model, tags=rule.filter.tags)
            found: list[TraceSummary] = []
            cursor: str | None = None
            while True:
                page = await self._traces.list_traces(rule.project_id, flt, cursor=cursor, limit=200)
                found += [t for t in page.items if (t.start_ns, t.trace_id) > after]
                cursor = page.next_cursor
                if cursor is None or len(found) >= cap:
                    break
            oldest = min((t.start_ns for t in found), default=end_ns)
            if cursor is None or oldest + 1 >= end_ns:  # the whole window was read, or it cannot shrink further
                break
            end_ns = oldest + 1  # keep the traces at the oldest instant, drop the newer ones for now
        found.sort(key=lambda t: (t.start_ns, t.trace_id))
        return found[: self._max_per_poll]

    def _offer(self, job: _Job | _Checkpoint, *, count: bool = True) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            if count and isinstance(job, _Job):
                self.stats.dropped += 1
                rid = job.rule.rule_id
                self.stats.dropped_by_rule[rid] = self.stats.dropped_by_rule.get(rid, 0) + 1
            return
        if isinstance(job, _Job):
            self.stats.enqueued += 1
            self._pending[job.rule.rule_id] = self._pending.get(job.rule.rule_id, 0) + 1

    async def _handle(self, job: _Job | _Checkpoint) -> None:
        """Score a job; the rule's cursor and counters are persisted every ``SAVE_EVERY`` jobs, when the rule
        has nothing left in the queue, and at each poll's checkpoint (a crash replays at most ``SAVE_EVERY``
        jobs, which the score idempotency keys make harmless)."""
        if isinstance(job, _Checkpoint):
            await self._save(job.rule_id, job.cursor)
            return
        rid = job.rule.rule_id
        try:
            scored, failed = await self._score(job)
        finally:
            self._pending[rid] -= 1
        self.stats.scored += scored
        self.stats.failed += failed
        unsaved = self._unsaved.setdefault(rid, [0, 0, 0])
        unsaved[0], unsaved[1], unsaved[2] = unsaved[0] + scored, unsaved[1] + failed, unsaved[2] + 1
        if unsaved[2] >= SAVE_EVERY or self._pending[rid] == 0:
            await self._save(rid, (job.trace.start_ns, job.trace.trace_id))

    async def _save(self, rule_id: str, cursor: tuple[int, str]) -> None:
        scored, failed, _ = self._unsaved.pop(rule_id, [0, 0, 0])
        await asyncio.to_thread(self._store.advance, rule_id, cursor, scored=scored, failed=failed)

    def _evaluator(self, spec: Mapping[str, Any], project_id: str) -> Evaluator:
        key = project_id + repr(sorted(spec.items()))
        if key not in self._built:
            if self._evaluators is None:
                raise InvalidInputError("no scorers are available on this server", param="scorers")
            self._built[key] = self._evaluators(spec, project_id)
        return self._built[key]

    async def _score(self, job: _Job) -> tuple[int, int]:
        rule, trace = job.rule, job.trace
        try:  # the first page of spans is enough to find the main span (one query, no trace lookup)
            spans = (await self._traces.list_spans(rule.project_id, trace.trace_id, cursor=None, limit=100)).items
        except NotFoundError:  # deleted by retention meanwhile
            return 0, 1
        main = main_span(spans)
        case = EvalCase(
            input=main.input if main else None,
            output=text_of(main.output if main else None),
            metadata={"trace_id": trace.trace_id, "model": trace.model, "name": trace.name, "tags": list(trace.tags)},
        )
        scored = failed = 0
        for spec in rule.scorers:
            try:
                evaluator = self._evaluator(spec, rule.project_id)
                async with asyncio.timeout(self._timeout_s):
                    result = await evaluator.score(case)
                await self._record(rule, trace, spec, result)
                scored += 1
            except (LlmopsError, TimeoutError, ValueError) as exc:
                log.warning("rule %r: scorer %r failed on trace %s: %s", rule.name, spec, trace.trace_id, exc)
                failed += 1
        return scored, failed

    async def _record(self, rule: OnlineRule, trace: TraceSummary, spec: Mapping[str, Any], r: ScoreResult) -> None:
        if r.error is not None or (r.value is None and r.label is None):
            raise InvalidInputError(r.error or "scorer returned no value", param="scorers")
        value: float | bool | str
        if r.data_type == "categorical":
            value = r.label if r.label is not None else str(r.value)
        elif r.data_type == "boolean":
            value = bool(r.passed) if r.passed is not None else bool(r.value and r.value >= 0.5)
        else:
            assert r.value is not None
            value = r.value
        judge = "judge" in str(spec.get("type", spec.get("name", ""))).lower() or r.trace_id is not None
        await self._scores.create_score(
            rule.project_id,
            NewScore(
                trace_id=trace.trace_id,
                name=r.name,
                value=value,
                source="llm_judge" if judge else "code",
                data_type=r.data_type,
                comment=(f"online rule {rule.name!r}: {r.reason}")[:MAX_COMMENT],
                idempotency_key=f"online:{rule.rule_id}:{trace.trace_id}:{r.name}",
            ),
        )


def rule_json(rule: OnlineRule, stats: WorkerStats | None = None) -> dict[str, Any]:
    return {
        "rule_id": rule.rule_id,
        "name": rule.name,
        "filter": rule.filter.to_dict(),
        "sample_rate": rule.sample_rate,
        "delay_s": rule.delay_s,
        "scorers": [dict(s) for s in rule.scorers],
        "enabled": rule.enabled,
        "cursor_ns": rule.cursor_ns,
        "scored": rule.scored,
        "failed": rule.failed,
        "dropped": (stats.dropped_by_rule.get(rule.rule_id, 0) if stats else 0),
    }


__all__ = [
    "ONLINE_KEY_ID",
    "EvaluatorFactory",
    "NewRule",
    "OnlineRule",
    "OnlineRuleService",
    "OnlineWorker",
    "RuleFilter",
    "WorkerStats",
    "rule_json",
    "sampled",
]
