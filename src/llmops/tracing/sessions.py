"""Sessions (conversations) and users, read from traces: a session is every trace sharing a ``session_id``,
in time order, each shown as one turn (its input and output messages); a user is every trace sharing a
``user_id``, with cost, requests (traces), errors and a feedback summary (scores on their traces).

Ids are the caller's own strings (``x-llmops-session`` / ``x-llmops-user``), always looked up inside the
caller's project: another project's session with the same id is a different session.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.tracing.models import Span, TraceSummary
from llmops.tracing.scores import Score, ScoreStore

MAX_PAGE = 200
T = TypeVar("T")


@dataclass(frozen=True)
class ScoreSummary:
    """Feedback of one score name: how many, the mean of numeric/boolean values, counts per label."""

    name: str
    count: int
    mean: float | None
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    user_id: str | None
    first_ns: int
    last_ns: int  # start of the newest trace (the list's sort key)
    end_ns: int
    traces: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class UserSummary:
    user_id: str
    first_ns: int
    last_ns: int
    requests: int  # traces
    errors: int
    sessions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class Turn:
    """One trace of a conversation: the input and output of its main span (the root, or the first with content)."""

    trace: TraceSummary
    input: Any
    output: Any
    scores: list[Score]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class SessionStore(Protocol):
    def list_sessions(
        self, project_id: str, *, user_id: str | None, after: tuple[int, str] | None, limit: int
    ) -> list[SessionSummary]: ...

    def find_session(self, project_id: str, session_id: str) -> SessionSummary | None: ...

    def session_traces(
        self, project_id: str, session_id: str, *, after: tuple[int, str] | None, limit: int
    ) -> list[TraceSummary]:
        """Traces of the session, oldest first, after the (start_ns, trace_id) cursor."""
        ...

    def spans_of_traces(self, project_id: str, trace_ids: list[str], *, content_only: bool = False) -> list[Span]:
        """Spans of these traces ordered by (trace_id, start_ns, span_id); only spans with input/output if asked."""
        ...

    def list_users(self, project_id: str, *, after: tuple[int, str] | None, limit: int) -> list[UserSummary]: ...

    def find_user(self, project_id: str, user_id: str) -> UserSummary | None: ...

    def score_summaries(
        self, project_id: str, *, user_ids: list[str] | None = None, session_id: str | None = None
    ) -> dict[str, list[ScoreSummary]]:
        """Score summaries per user id (``user_ids``) or, with ``session_id``, under that session id."""
        ...


def encode_cursor(ns: int, key: str) -> str:
    return base64.urlsafe_b64encode(f"{ns}:{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        ns, key = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(ns), key
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cursor is not one this server issued", param="cursor") from exc


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}", param="limit")


def main_span(spans: list[Span]) -> Span | None:
    """The span that speaks for a trace in a conversation: the root if it has content, else the first that has."""
    with_content = [s for s in spans if s.input is not None or s.output is not None]
    roots = [s for s in with_content if s.parent_span_id is None]
    candidates = roots or with_content
    return candidates[0] if candidates else None


class SessionService:
    def __init__(self, store: SessionStore, scores: ScoreStore) -> None:
        self._store = store
        self._scores = scores

    async def list_sessions(
        self, project_id: str, *, user_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[SessionSummary]:
        _check_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        items = await asyncio.to_thread(
            self._store.list_sessions, project_id, user_id=user_id, after=after, limit=limit + 1
        )
        more, items = len(items) > limit, items[:limit]
        return Page(items, encode_cursor(items[-1].last_ns, items[-1].session_id) if more else None)

    async def get_session(self, project_id: str, session_id: str) -> tuple[SessionSummary, list[ScoreSummary]]:
        session = await asyncio.to_thread(self._store.find_session, project_id, session_id)
        if session is None:
            raise NotFoundError(f"session {session_id!r} not found", param="session_id")
        feedback = await asyncio.to_thread(self._store.score_summaries, project_id, session_id=session_id)
        return session, feedback.get(session_id, [])

    async def turns(
        self, project_id: str, session_id: str, *, cursor: str | None = None, limit: int = 50
    ) -> Page[Turn]:
        """The session's traces oldest first, each with its messages and scores."""
        _check_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        traces = await asyncio.to_thread(
            self._store.session_traces, project_id, session_id, after=after, limit=limit + 1
        )
        more, traces = len(traces) > limit, traces[:limit]
        ids = [t.trace_id for t in traces]
        spans = await asyncio.to_thread(self._store.spans_of_traces, project_id, ids, content_only=True)
        scores = await asyncio.to_thread(self._scores.scores_of_traces, project_id, ids) if ids else []
        by_trace: dict[str, list[Span]] = {}
        for s in spans:
            by_trace.setdefault(s.trace_id, []).append(s)
        turns = []
        for t in traces:
            span = main_span(by_trace.get(t.trace_id, []))
            mine = [s for s in scores if s.trace_id == t.trace_id]
            turns.append(Turn(t, span.input if span else None, span.output if span else None, mine))
        return Page(turns, encode_cursor(traces[-1].start_ns, traces[-1].trace_id) if more else None)

    async def list_users(self, project_id: str, *, cursor: str | None = None, limit: int = 50) -> Page[UserSummary]:
        _check_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        items = await asyncio.to_thread(self._store.list_users, project_id, after=after, limit=limit + 1)
        more, items = len(items) > limit, items[:limit]
        return Page(items, encode_cursor(items[-1].last_ns, items[-1].user_id) if more else None)

    async def feedback_of_users(self, project_id: str, user_ids: list[str]) -> dict[str, list[ScoreSummary]]:
        if not user_ids:
            return {}
        return await asyncio.to_thread(self._store.score_summaries, project_id, user_ids=user_ids)

    async def get_user(self, project_id: str, user_id: str) -> tuple[UserSummary, list[ScoreSummary]]:
        user = await asyncio.to_thread(self._store.find_user, project_id, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id!r} not found", param="user_id")
        feedback = await self.feedback_of_users(project_id, [user_id])
        return user, feedback.get(user_id, [])
