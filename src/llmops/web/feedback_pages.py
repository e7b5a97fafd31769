"""Pages for sessions (a conversation as chat turns), users (cost, requests, errors, feedback) and scoring a
trace from its page (reviewer labels, thumbs). Same rules as ``pages.py``: handlers parse, call one or two
service methods and render; other projects' ids render the 404 page; recorded content stays autoescaped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.projects import Principal
from llmops.tracing import NewScore, Turn
from llmops.tracing.scores import ScoreSource
from llmops.web import trace_view
from llmops.web.pages import TraceQuery, WebUI  # pages.py mounts these routes lazily, so no import cycle

PAGE_SIZE = 50
_SOURCES: tuple[str, ...] = get_args(ScoreSource)


def turn_view(turn: Turn, *, first: bool) -> dict[str, Any]:
    """A turn as chat: the messages new in this turn (after the last assistant message of its input; the
    system prompt only on the first turn) and the answer. Content that is not chat stays raw."""
    inputs = trace_view.messages(turn.input)
    outputs = trace_view.messages(turn.output)
    if inputs is not None:
        last_assistant = max((i for i, m in enumerate(inputs) if m.role == "assistant"), default=-1)
        inputs = [m for m in inputs[last_assistant + 1 :] if first or m.role != "system"]
    return {"turn": turn, "inputs": inputs, "outputs": outputs}


def _score_value(form_value: str) -> float | bool | str:
    if form_value in ("up", "down"):
        return form_value == "up"
    try:
        return float(form_value)
    except ValueError:
        return form_value


def feedback_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    _session_pages(router, ui)
    _user_pages(router, ui)
    _score_form(router, ui, same_origin)


def _session_pages(router: APIRouter, ui: WebUI) -> None:
    @router.get("/sessions")
    async def sessions(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        cursor = request.query_params.get("cursor") or None
        error = None
        try:
            page = await ui.services.sessions.list_sessions(who.project_id, cursor=cursor, limit=PAGE_SIZE)
            items, next_cursor = page.items, page.next_cursor
        except InvalidInputError as exc:
            items, next_cursor, error = [], None, exc.message
        context = {"sessions": items, "next_cursor": next_cursor, "cursor": cursor, "error": error}
        return await ui.page(request, who, "sessions.html", nav="sessions", **context)

    @router.get("/sessions/{session_id:path}")
    async def session(session_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        svc = ui.services.sessions
        try:
            summary, feedback = await svc.get_session(who.project_id, session_id)
            page = await svc.turns(who.project_id, session_id, cursor=request.query_params.get("cursor"), limit=100)
        except (NotFoundError, InvalidInputError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        first_page = not request.query_params.get("cursor")
        turns = [turn_view(t, first=first_page and i == 0) for i, t in enumerate(page.items)]
        context = {"session": summary, "feedback": feedback, "turns": turns, "next_cursor": page.next_cursor}
        return await ui.page(request, who, "session.html", nav="sessions", view=trace_view, **context)


def _user_pages(router: APIRouter, ui: WebUI) -> None:
    @router.get("/users")
    async def users(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        cursor = request.query_params.get("cursor") or None
        error, feedback = None, {}
        try:
            page = await ui.services.sessions.list_users(who.project_id, cursor=cursor, limit=PAGE_SIZE)
            items, next_cursor = page.items, page.next_cursor
            feedback = await ui.services.sessions.feedback_of_users(who.project_id, [u.user_id for u in items])
        except InvalidInputError as exc:
            items, next_cursor, error = [], None, exc.message
        context = {"users": items, "feedback": feedback, "next_cursor": next_cursor, "cursor": cursor, "error": error}
        return await ui.page(request, who, "users.html", nav="users", **context)

    @router.get("/users/{user_id:path}")
    async def user(user_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        svc = ui.services.sessions
        try:
            summary, feedback = await svc.get_user(who.project_id, user_id)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        sessions = await svc.list_sessions(who.project_id, user_id=user_id, limit=20)
        q = TraceQuery(user=user_id)
        traces = await ui.services.traces.list_traces(who.project_id, q.filter, limit=20)
        context = {"user": summary, "feedback": feedback, "sessions": sessions.items, "traces": traces.items, "q": q}
        return await ui.page(request, who, "user.html", nav="users", compact=True, **context)


def _score_form(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    @router.post("/traces/{trace_id}/scores")
    async def add_score(trace_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """A reviewer's label or thumbs from the trace page (form post; same-origin only)."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        source = str(form.get("source") or "human")
        new = NewScore(
            trace_id=trace_id,
            name=str(form.get("name") or "").strip(),
            value=_score_value(str(form.get("value") or "").strip()),
            source=source if source in _SOURCES else "human",  # type: ignore[arg-type]
            comment=str(form.get("comment") or "").strip() or None,
        )
        try:
            await ui.services.scores.create_score(who.project_id, new)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        except InvalidInputError as exc:
            return RedirectResponse(f"/traces/{quote(trace_id)}?score_error={quote(exc.message)}#scores", 303)
        return RedirectResponse(f"/traces/{quote(trace_id)}#scores", status_code=303)


__all__ = ["feedback_routes", "turn_view"]
