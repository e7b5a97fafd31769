"""Human review: score configurations, annotation queues, review items and reviewer labels.

A score configuration says what a label may be (numeric within min/max, boolean, categorical with allowed
values); every label is validated against it with a precise error. A queue is a fixed list of traces (picked by
a trace filter, a random sample, or explicit trace ids — experiment items are queued through the trace each
result keeps) to label against one or more configs, optionally restricted to named reviewers (API key names or
ids). Submitting an item stores each label as a trace score (source ``human``, name = the config name) through
:class:`~llmops.tracing.ScoreService`, so dashboards and judge calibration read them like any other score.
A reviewer's corrected output is kept on the item; :meth:`ReviewService.export_corrections` turns corrections
into dataset items (through the injected :class:`DatasetSink`, the evals datasets service, when wired).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import orjson

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from llmops.core.ids import new_id
from llmops.evals.models import ScoreDataType
from llmops.tracing import NewScore, ScoreService, Span, TraceFilter, TraceService, main_span

ItemStatus = Literal["pending", "done", "skipped"]
STATUSES: tuple[str, ...] = ("pending", "done", "skipped")
DATA_TYPES: tuple[str, ...] = ("numeric", "boolean", "categorical")
MAX_NAME = 200
MAX_CATEGORIES = 50
MAX_QUEUE_ITEMS = 5000
MAX_CORRECTION = 100_000
LabelValue = float | bool | str


@dataclass(frozen=True)
class ScoreConfig:
    config_id: str
    project_id: str
    name: str
    data_type: ScoreDataType
    min_value: float | None = None
    max_value: float | None = None
    categories: tuple[str, ...] = ()
    description: str | None = None
    created_ns: int = 0

    @property
    def ordinal(self) -> bool:
        """Numeric configs with bounds are ordinal scales (weighted κ applies)."""
        return self.data_type == "numeric"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_type": self.data_type,
            "min": self.min_value,
            "max": self.max_value,
            "categories": list(self.categories),
            "description": self.description,
        }


@dataclass(frozen=True)
class NewScoreConfig:
    name: str
    data_type: str
    min_value: float | None = None
    max_value: float | None = None
    categories: Sequence[str] = ()
    description: str | None = None


@dataclass(frozen=True)
class QueueSource:
    """Where a queue's traces come from: exactly one of ``filter`` (with ``limit``), ``sample`` (a random
    sample of ``sample`` traces among those the filter matches, newest ``limit`` considered) or ``trace_ids``."""

    filter: TraceFilter = field(default_factory=TraceFilter)
    filter_params: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    sample: int | None = None
    trace_ids: tuple[str, ...] = ()
    seed: int | None = None

    def describe(self) -> dict[str, Any]:
        if self.trace_ids:
            return {"kind": "trace_ids", "count": len(self.trace_ids)}
        kind = "sample" if self.sample else "filter"
        return {
            "kind": kind,
            "filter": [list(p) for p in self.filter_params],
            "limit": self.limit,
            "sample": self.sample,
        }


@dataclass(frozen=True)
class Queue:
    queue_id: str
    project_id: str
    name: str
    config_names: tuple[str, ...]
    reviewers: tuple[str, ...]
    source: Mapping[str, Any]
    created_ns: int
    description: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # status -> items


@dataclass(frozen=True)
class ReviewItem:
    item_id: str
    queue_id: str
    project_id: str
    position: int
    trace_id: str
    status: str
    reviewer: str | None
    labels: Mapping[str, LabelValue]
    correction: str | None
    comment: str | None
    updated_ns: int


@dataclass(frozen=True)
class Submission:
    labels: Mapping[str, Any]
    correction: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class ItemView:
    """An item with what a reviewer needs to judge it: the trace's input/output and a spans summary."""

    item: ReviewItem
    input: Any
    output: Any
    spans: list[dict[str, Any]]


class ReviewStore(Protocol):
    def insert_config(self, config: ScoreConfig) -> None:
        """Raises :class:`ConflictError` when the name is taken in the project."""
        ...

    def list_configs(self, project_id: str) -> list[ScoreConfig]: ...

    def find_config(self, project_id: str, name: str) -> ScoreConfig | None: ...

    def delete_config(self, project_id: str, name: str) -> bool: ...

    def insert_queue(self, queue: Queue, items: list[ReviewItem]) -> None: ...

    def list_queues(self, project_id: str) -> list[Queue]: ...

    def find_queue(self, project_id: str, queue_id: str) -> Queue | None: ...

    def list_items(self, project_id: str, queue_id: str, status: str | None) -> list[ReviewItem]: ...

    def find_item(self, project_id: str, queue_id: str, item_id: str) -> ReviewItem | None: ...

    def update_item(self, item: ReviewItem) -> None: ...


class DatasetSink(Protocol):
    """What review needs of the datasets service: append items to a named dataset (a new version)."""

    async def add_items(self, project_id: str, dataset: str, items: list[dict[str, Any]]) -> Any: ...


def validate_label(config: ScoreConfig, value: Any) -> LabelValue:
    """The label as its config's type, or :class:`InvalidInputError` saying precisely why not."""
    param = f"labels.{config.name}"
    if config.data_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise InvalidInputError(f"{config.name!r} is boolean: {value!r} is not true/false", param=param)
    if config.data_type == "categorical":
        label = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else None
        if label is None or label not in config.categories:
            allowed = ", ".join(repr(c) for c in config.categories)
            raise InvalidInputError(f"{config.name!r} accepts only {allowed}; got {value!r}", param=param)
        return label
    number = _number(value)
    if number is None:
        raise InvalidInputError(f"{config.name!r} is numeric: {value!r} is not a finite number", param=param)
    lo, hi = config.min_value, config.max_value
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise InvalidInputError(f"{config.name!r} must be between {lo:g} and {hi:g}; got {number:g}", param=param)
    return number


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def check_config(new: NewScoreConfig) -> NewScoreConfig:
    name = new.name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInputError(f"name must be 1-{MAX_NAME} characters", param="name")
    if new.data_type not in DATA_TYPES:
        raise InvalidInputError(f"data_type must be one of {', '.join(DATA_TYPES)}", param="data_type")
    categories = tuple(dict.fromkeys(c.strip() for c in new.categories if c.strip()))
    if new.data_type == "categorical" and not 2 <= len(categories) <= MAX_CATEGORIES:
        raise InvalidInputError(
            f"a categorical config needs 2-{MAX_CATEGORIES} distinct categories", param="categories"
        )
    if new.data_type != "categorical" and categories:
        raise InvalidInputError("categories are only for categorical configs", param="categories")
    if new.data_type == "numeric":
        if new.min_value is None or new.max_value is None:
            raise InvalidInputError("a numeric config needs min and max", param="min")
        if not (math.isfinite(new.min_value) and math.isfinite(new.max_value)) or new.min_value >= new.max_value:
            raise InvalidInputError("min must be a finite number below max", param="min")
    elif new.min_value is not None or new.max_value is not None:
        raise InvalidInputError("min/max are only for numeric configs", param="min")
    return replace(new, name=name, categories=categories)


def _check_name(name: str, param: str = "name") -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInputError(f"{param} must be 1-{MAX_NAME} characters", param=param)
    return name


def span_summary(spans: list[Span]) -> list[dict[str, Any]]:
    """One line per span (name, kind, model, duration, status, tokens) in start order."""
    return [
        {
            "span_id": s.span_id,
            "name": s.name,
            "kind": s.kind,
            "model": s.response_model or s.request_model,
            "duration_ms": round(s.duration_ms, 1),
            "status": s.status,
            "tokens": (s.input_tokens or 0) + (s.output_tokens or 0),
            "depth": 0 if s.parent_span_id is None else 1,
        }
        for s in spans
    ]


def text_of(value: Any) -> str:
    """The text of recorded span content: a string, the last message of a chat, or JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], Mapping):
        return text_of(value[-1])
    if isinstance(value, Mapping):
        if isinstance(value.get("parts"), list):  # OTel GenAI message: text parts
            return "".join(str(p.get("content", "")) for p in value["parts"] if isinstance(p, Mapping))
        for key in ("content", "text", "output"):
            if key in value:
                return text_of(value[key])
        if "choices" in value and value["choices"]:
            return text_of(value["choices"][0].get("message"))
    if isinstance(value, list):
        return "\n".join(text_of(v) for v in value)
    return orjson.dumps(value, default=str).decode()


class ReviewService:
    def __init__(
        self,
        store: ReviewStore,
        traces: TraceService,
        scores: ScoreService,
        *,
        datasets: DatasetSink | None = None,
        clock: Clock | None = None,
        pending_writes: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._pending_writes = pending_writes  # the span recorder's flush: a just-answered call's trace
        self._store = store
        self._traces = traces
        self._scores = scores
        self._datasets = datasets
        self._clock = clock or SystemClock()

    # score configs ----------------------------------------------------------------------------------------
    async def create_config(self, project_id: str, new: NewScoreConfig) -> ScoreConfig:
        new = check_config(new)
        config = ScoreConfig(
            new_id("scfg"),
            project_id,
            new.name,
            new.data_type,  # type: ignore[arg-type]
            new.min_value,
            new.max_value,
            tuple(new.categories),
            new.description,
            self._clock.now_ns(),
        )
        await asyncio.to_thread(self._store.insert_config, config)
        return config

    async def list_configs(self, project_id: str) -> list[ScoreConfig]:
        return await asyncio.to_thread(self._store.list_configs, project_id)

    async def get_config(self, project_id: str, name: str) -> ScoreConfig:
        config = await asyncio.to_thread(self._store.find_config, project_id, name)
        if config is None:
            raise NotFoundError(f"score config {name!r} not found", param="config")
        return config

    async def delete_config(self, project_id: str, name: str) -> None:
        if not await asyncio.to_thread(self._store.delete_config, project_id, name):
            raise NotFoundError(f"score config {name!r} not found", param="config")

    # queues ----------------------------------------------------------------------------------------------
    async def create_queue(
        self,
        project_id: str,
        name: str,
        *,
        configs: Sequence[str],
        source: QueueSource,
        reviewers: Sequence[str] = (),
        description: str | None = None,
    ) -> Queue:
        name = _check_name(name)
        if not configs:
            raise InvalidInputError("a queue needs at least one score config", param="configs")
        for config_name in configs:
            await self.get_config(project_id, config_name)
        trace_ids = await self._pick_traces(project_id, source)
        if not trace_ids:
            raise InvalidInputError("no trace matches this queue's source", param="source")
        now = self._clock.now_ns()
        queue = Queue(
            new_id("rq"),
            project_id,
            name,
            tuple(dict.fromkeys(configs)),
            tuple(dict.fromkeys(r.strip() for r in reviewers if r.strip())),
            source.describe(),
            now,
            description,
            {"pending": len(trace_ids), "done": 0, "skipped": 0},
        )
        items = [
            ReviewItem(new_id("ri"), queue.queue_id, project_id, i, t, "pending", None, {}, None, None, now)
            for i, t in enumerate(trace_ids)
        ]
        await asyncio.to_thread(self._store.insert_queue, queue, items)
        return queue

    async def _pick_traces(self, project_id: str, source: QueueSource) -> list[str]:
        if source.trace_ids:
            if len(source.trace_ids) > MAX_QUEUE_ITEMS:
                raise InvalidInputError(f"at most {MAX_QUEUE_ITEMS} traces per queue", param="trace_ids")
            given = list(dict.fromkeys(t.lower() for t in source.trace_ids))
            for trace_id in given:  # NotFoundError for another project's or an unknown trace
                await self._require_trace(project_id, trace_id)
            return given
        if not 1 <= source.limit <= MAX_QUEUE_ITEMS:
            raise InvalidInputError(f"limit must be between 1 and {MAX_QUEUE_ITEMS}", param="limit")
        ids: list[str] = []
        cursor: str | None = None
        while len(ids) < source.limit:
            page = await self._traces.list_traces(
                project_id, source.filter, cursor=cursor, limit=min(200, source.limit - len(ids))
            )
            ids += [t.trace_id for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        if source.sample is not None:
            if source.sample < 1:
                raise InvalidInputError("sample must be at least 1", param="sample")
            rng = random.Random(source.seed)  # noqa: S311 - sampling, not security
            ids = rng.sample(ids, min(source.sample, len(ids)))
        return ids

    async def _require_trace(self, project_id: str, trace_id: str) -> None:
        try:
            await self._traces.get_trace_page(project_id, trace_id, limit=1)
        except NotFoundError:
            if self._pending_writes is None:
                raise
            await self._pending_writes()  # the trace of a call answered a moment ago may still be queued
            await self._traces.get_trace_page(project_id, trace_id, limit=1)

    async def list_queues(self, project_id: str) -> list[Queue]:
        return await asyncio.to_thread(self._store.list_queues, project_id)

    async def get_queue(self, project_id: str, queue_id: str) -> Queue:
        queue = await asyncio.to_thread(self._store.find_queue, project_id, queue_id)
        if queue is None:
            raise NotFoundError(f"queue {queue_id!r} not found", param="queue_id")
        return queue

    async def list_items(self, project_id: str, queue_id: str, *, status: str | None = None) -> list[ReviewItem]:
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}", param="status")
        await self.get_queue(project_id, queue_id)
        return await asyncio.to_thread(self._store.list_items, project_id, queue_id, status)

    async def get_item(self, project_id: str, queue_id: str, item_id: str) -> ReviewItem:
        item = await asyncio.to_thread(self._store.find_item, project_id, queue_id, item_id)
        if item is None:
            raise NotFoundError(f"item {item_id!r} not found in queue {queue_id!r}", param="item_id")
        return item

    async def view_item(self, project_id: str, item: ReviewItem) -> ItemView:
        try:
            _, spans = await self._traces.get_trace(project_id, item.trace_id)
        except NotFoundError:  # the trace expired (retention) after it was queued
            return ItemView(item, None, None, [])
        main = main_span(spans)
        return ItemView(item, main.input if main else None, main.output if main else None, span_summary(spans))

    # labelling -------------------------------------------------------------------------------------------
    def _check_reviewer(self, queue: Queue, reviewer: str, reviewer_ids: Sequence[str]) -> None:
        if queue.reviewers and not set(queue.reviewers) & {reviewer, *reviewer_ids}:
            raise PermissionDeniedError(f"{reviewer!r} is not a reviewer of queue {queue.name!r}")

    async def submit(
        self,
        project_id: str,
        queue_id: str,
        item_id: str,
        submission: Submission,
        *,
        reviewer: str,
        reviewer_ids: Sequence[str] = (),
    ) -> ReviewItem:
        """Validate every label against its config, store each as a trace score, mark the item done."""
        queue = await self.get_queue(project_id, queue_id)
        self._check_reviewer(queue, reviewer, reviewer_ids)
        item = await self.get_item(project_id, queue_id, item_id)
        unknown = set(submission.labels) - set(queue.config_names)
        if unknown:
            raise InvalidInputError(f"queue {queue.name!r} has no score config {sorted(unknown)[0]!r}", param="labels")
        if not submission.labels:
            raise InvalidInputError("give at least one label", param="labels")
        if submission.correction is not None and len(submission.correction) > MAX_CORRECTION:
            raise InvalidInputError(f"correction is longer than {MAX_CORRECTION} characters", param="correction")
        labels: dict[str, LabelValue] = {}
        for name, raw in submission.labels.items():
            labels[name] = validate_label(await self.get_config(project_id, name), raw)
        for name, value in labels.items():
            await self._scores.create_score(
                project_id,
                NewScore(
                    trace_id=item.trace_id,
                    name=name,
                    value=value,
                    source="human",
                    comment=submission.comment,
                    idempotency_key=f"review:{item.item_id}:{name}:{value}",
                ),
            )
        done = replace(
            item,
            status="done",
            reviewer=reviewer,
            labels=labels,
            correction=submission.correction or None,
            comment=submission.comment,
            updated_ns=self._clock.now_ns(),
        )
        await asyncio.to_thread(self._store.update_item, done)
        return done

    async def skip(
        self, project_id: str, queue_id: str, item_id: str, *, reviewer: str, reviewer_ids: Sequence[str] = ()
    ) -> ReviewItem:
        queue = await self.get_queue(project_id, queue_id)
        self._check_reviewer(queue, reviewer, reviewer_ids)
        item = await self.get_item(project_id, queue_id, item_id)
        if item.status == "done":
            raise ConflictError(f"item {item_id!r} is already labelled", param="item_id")
        skipped = replace(item, status="skipped", reviewer=reviewer, updated_ns=self._clock.now_ns())
        await asyncio.to_thread(self._store.update_item, skipped)
        return skipped

    # corrections -> dataset items ------------------------------------------------------------------------
    async def corrections(self, project_id: str, queue_id: str) -> list[dict[str, Any]]:
        """Dataset items (input, expected output, source trace) from the queue's corrected outputs."""
        out = []
        for item in await self.list_items(project_id, queue_id, status="done"):
            if not item.correction:
                continue
            view = await self.view_item(project_id, item)
            out.append(
                {
                    "input": view.input,
                    "expected_output": item.correction,
                    "metadata": {"queue_id": queue_id, "item_id": item.item_id, "reviewer": item.reviewer},
                    "source_trace_id": item.trace_id,
                }
            )
        return out

    async def export_corrections(self, project_id: str, queue_id: str, dataset: str) -> dict[str, Any]:
        if self._datasets is None:
            raise NotFoundError("datasets are not available on this server", param="dataset")
        items = await self.corrections(project_id, queue_id)
        if not items:
            raise InvalidInputError(f"queue {queue_id!r} has no corrected outputs yet", param="queue_id")
        result = await self._datasets.add_items(project_id, _check_name(dataset, "dataset"), items)
        return {"dataset": dataset, "added": len(items), "result": getattr(result, "version", None)}
