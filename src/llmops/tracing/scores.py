"""Feedback and scores on traces and spans: end-user thumbs, reviewer labels, evaluator results.

A score is numeric, boolean (stored as 1.0 / 0.0) or categorical (a label). An ``idempotency_key`` is unique
per project: posting the same key again returns the stored score (``created=False``) and stores nothing.
The trace (and span, when given) must exist in the caller's project, else :class:`NotFoundError`.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.core.ids import new_id

ScoreSource = Literal["user", "human", "llm_judge", "code"]
ScoreDataType = Literal["numeric", "boolean", "categorical"]
SOURCES: tuple[str, ...] = ("user", "human", "llm_judge", "code")
MAX_PAGE = 200
MAX_NAME = 200
MAX_LABEL = 200
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Score:
    score_id: str
    project_id: str
    trace_id: str
    span_id: str | None
    name: str
    data_type: str
    value: float | None  # numeric, or 1.0 / 0.0 for boolean
    string_value: str | None  # categorical label
    comment: str | None
    source: str
    idempotency_key: str | None
    created_ns: int

    @property
    def display_value(self) -> float | bool | str | None:
        if self.data_type == "boolean":
            return self.value == 1.0
        return self.string_value if self.data_type == "categorical" else self.value


@dataclass(frozen=True)
class NewScore:
    """What a caller sends; the project always comes from the credential, never from here."""

    trace_id: str
    name: str
    value: float | bool | str
    source: ScoreSource = "user"
    span_id: str | None = None
    data_type: ScoreDataType | None = None
    comment: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ScoreFilter:
    trace_id: str | None = None
    span_id: str | None = None
    name: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ScorePage:
    items: list[Score]
    next_cursor: str | None


@dataclass(frozen=True)
class ScorePoint:
    """One numeric/boolean score value at a time (for the per-name series)."""

    name: str
    created_ns: int
    value: float


class ScoreStore(Protocol):
    def insert_score(self, score: Score) -> Score:
        """Insert, or return the stored score with the same (project, idempotency_key)."""
        ...

    def find_score(self, project_id: str, score_id: str) -> Score | None: ...

    def list_scores(
        self, project_id: str, flt: ScoreFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[Score]: ...

    def delete_score(self, project_id: str, score_id: str) -> bool: ...

    def trace_exists(self, project_id: str, trace_id: str, span_id: str | None) -> bool: ...

    def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]: ...

    def score_points(self, project_id: str, start_ns: int, end_ns: int, name: str | None) -> list[ScorePoint]: ...


def encode_cursor(score: Score) -> str:
    return base64.urlsafe_b64encode(f"{score.created_ns}:{score.score_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created, score_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        if not score_id.startswith("score_"):
            raise ValueError(score_id)
        return int(created), score_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is not one this server issued", param="cursor") from exc


def _typed_value(new: NewScore) -> tuple[str, float | None, str | None]:
    """(data_type, value, string_value), checking the value against the declared type."""
    v = new.value
    kind = new.data_type or ("boolean" if isinstance(v, bool) else "categorical" if isinstance(v, str) else "numeric")
    if kind == "boolean":
        if isinstance(v, str) and v.lower() in ("true", "false"):
            v = v.lower() == "true"
        if not isinstance(v, bool) and v not in (0, 1):
            raise InvalidInputError("a boolean score needs true/false (or 1/0)", param="value")
        return kind, 1.0 if v else 0.0, None
    if kind == "categorical":
        label = str(v).strip() if not isinstance(v, bool) else str(v).lower()
        if not label or len(label) > MAX_LABEL:
            raise InvalidInputError(f"a categorical value must be 1-{MAX_LABEL} characters", param="value")
        return kind, None, label
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidInputError("a numeric score needs a finite number", param="value")
    return kind, float(v), None


def _check(new: NewScore) -> None:
    if not new.name.strip() or len(new.name) > MAX_NAME:
        raise InvalidInputError(f"name must be 1-{MAX_NAME} characters", param="name")
    if new.source not in SOURCES:
        raise InvalidInputError(f"source must be one of {', '.join(SOURCES)}", param="source")
    if new.comment is not None and len(new.comment) > MAX_COMMENT:
        raise InvalidInputError(f"comment is longer than {MAX_COMMENT} characters", param="comment")
    if new.idempotency_key is not None and not 1 <= len(new.idempotency_key) <= 200:
        raise InvalidInputError("idempotency_key must be 1-200 characters", param="idempotency_key")


class ScoreService:
    """``pending_writes`` (the span recorder's ``flush``) is awaited once before a trace is declared missing: a
    thumbs-up sent right after a gateway response must find the trace its span is still being written for."""

    def __init__(
        self,
        store: ScoreStore,
        *,
        clock: Clock | None = None,
        pending_writes: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._pending_writes = pending_writes

    async def _exists(self, project_id: str, trace_id: str, span_id: str | None) -> bool:
        if await asyncio.to_thread(self._store.trace_exists, project_id, trace_id, span_id):
            return True
        if self._pending_writes is None:
            return False
        await self._pending_writes()
        return await asyncio.to_thread(self._store.trace_exists, project_id, trace_id, span_id)

    async def create_score(self, project_id: str, new: NewScore) -> tuple[Score, bool]:
        """Store a score; returns (score, created). ``created`` is False for a replayed idempotency key."""
        _check(new)
        data_type, value, string_value = _typed_value(new)
        trace_id, span_id = new.trace_id.lower(), new.span_id.lower() if new.span_id else None
        if not await self._exists(project_id, trace_id, span_id):
            what = f"span {span_id!r} of trace {trace_id!r}" if span_id else f"trace {trace_id!r}"
            raise NotFoundError(f"{what} not found", param="span_id" if span_id else "trace_id")
        score = Score(
            score_id=new_id("score"),
            project_id=project_id,
            trace_id=trace_id,
            span_id=span_id,
            name=new.name.strip(),
            data_type=data_type,
            value=value,
            string_value=string_value,
            comment=new.comment,
            source=new.source,
            idempotency_key=new.idempotency_key,
            created_ns=self._clock.now_ns(),
        )
        stored = await asyncio.to_thread(self._store.insert_score, score)
        return stored, stored.score_id == score.score_id

    async def get_score(self, project_id: str, score_id: str) -> Score:
        score = await asyncio.to_thread(self._store.find_score, project_id, score_id)
        if score is None:
            raise NotFoundError(f"score {score_id!r} not found", param="score_id")
        return score

    async def list_scores(
        self, project_id: str, flt: ScoreFilter, *, cursor: str | None = None, limit: int = 50
    ) -> ScorePage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        after = decode_cursor(cursor) if cursor else None
        items = await asyncio.to_thread(self._store.list_scores, project_id, flt, after=after, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return ScorePage(items, encode_cursor(items[-1]) if more else None)

    async def delete_score(self, project_id: str, score_id: str) -> None:
        if not await asyncio.to_thread(self._store.delete_score, project_id, score_id):
            raise NotFoundError(f"score {score_id!r} not found", param="score_id")

    async def scores_of_traces(self, project_id: str, trace_ids: list[str]) -> list[Score]:
        if not trace_ids:
            return []
        return await asyncio.to_thread(self._store.scores_of_traces, project_id, trace_ids)

    async def metrics(
        self, project_id: str, start_ns: int, end_ns: int, bucket_s: int, *, name: str | None = None
    ) -> dict[str, object]:
        """Mean of numeric/boolean scores per name, overall and per time bucket (empty buckets: mean None)."""
        if end_ns <= start_ns:
            raise InvalidInputError("end must be after start", param="end")
        if bucket_s < 1 or (end_ns - start_ns) / 1e9 / bucket_s > 2000:
            raise InvalidInputError("bucket too small for this time range (max 2000 buckets)", param="bucket")
        points = await asyncio.to_thread(self._store.score_points, project_id, start_ns, end_ns, name)
        return score_series(points, start_ns, end_ns, bucket_s)


def score_series(points: list[ScorePoint], start_ns: int, end_ns: int, bucket_s: int) -> dict[str, object]:
    bucket_ns = bucket_s * 1_000_000_000
    n_buckets = math.ceil((end_ns - start_ns) / bucket_ns)
    sums: dict[str, list[list[float]]] = {}
    for p in points:
        cells = sums.setdefault(p.name, [[0.0, 0.0] for _ in range(n_buckets)])
        cell = cells[(p.created_ns - start_ns) // bucket_ns]
        cell[0] += p.value
        cell[1] += 1
    names = []
    for name in sorted(sums):
        cells = sums[name]
        total, count = sum(c[0] for c in cells), sum(c[1] for c in cells)
        series = [
            {"start_ns": start_ns + i * bucket_ns, "count": int(c[1]), "mean": c[0] / c[1] if c[1] else None}
            for i, c in enumerate(cells)
        ]
        names.append({"name": name, "count": int(count), "mean": total / count, "series": series})
    return {"bucket_s": bucket_s, "start_ns": start_ns, "end_ns": end_ns, "names": names}
