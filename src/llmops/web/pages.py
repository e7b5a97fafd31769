"""Routes of the web UI: sign-in, home (quick start), traces (live list, detail), dashboard, 404.

Handlers parse the request, call one service method and render a template. Authentication reuses the
app's ``authenticate`` (cookie ``llmops_key``, set HttpOnly + SameSite=Strict by ``POST /login``); pages
redirect to ``/login`` when it fails, htmx fragments answer with ``HX-Redirect``. Every HTML response
carries a Content-Security-Policy allowing only same-origin scripts, so no inline script runs even if
escaping were ever bypassed (templates are autoescaped; recorded content is never marked safe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from llmops.core.errors import AuthenticationError, InvalidInputError, NotFoundError
from llmops.gateway import GatewayService
from llmops.projects import Principal, ProjectService
from llmops.prompts import PromptService
from llmops.tracing import MetricsQuery, ScoreService, SessionService, TraceFilter, TraceService, parse_trace_filter
from llmops.web import trace_view
from llmops.web.assets import Assets, mount_assets
from llmops.web.formatting import install_filters

Authenticate = Callable[[Request], Awaitable[Principal]]

COOKIE = "llmops_key"
COOKIE_MAX_AGE_S = 30 * 86_400
PAGE_SIZE = 50
WEB_SPAN_PAGE = 1000  # spans per trace page in the UI: a huge trace never loads whole
EXTRA_PARAMS = ("min_cost", "max_cost", "min_latency_ms", "max_latency_ms")
# range name -> (length, bucket width), seconds; each gives 60-168 buckets
RANGES = {"1h": (3_600, 60), "24h": (86_400, 900), "7d": (604_800, 3_600)}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class WebServices(Protocol):
    """What the pages use of ``llmops.app.Services``."""

    @property
    def projects(self) -> ProjectService: ...

    @property
    def traces(self) -> TraceService: ...

    @property
    def gateway(self) -> GatewayService: ...

    @property
    def scores(self) -> ScoreService: ...

    @property
    def sessions(self) -> SessionService: ...

    @property
    def prompts(self) -> PromptService: ...


class LoginRequired(Exception):
    """Raised by the page dependency; turned into a redirect to /login (never a JSON envelope)."""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("llmops.web", "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    install_filters(env)
    return env


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``//host`` and ``/\\host`` would leave the site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@dataclass(frozen=True)
class TraceQuery:
    """The trace list's filters and cursor, as query parameters in and links out."""

    model: str | None = None
    status: str | None = None
    user: str | None = None
    session: str | None = None
    cursor: str | None = None
    q: str | None = None  # full-text search
    tag: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # attr.*, score.*, cost and latency ranges, kept as given

    @classmethod
    def parse(cls, request: Request) -> TraceQuery:
        p = request.query_params
        status = p.get("status")
        extra = tuple(
            (k, v) for k, v in p.multi_items() if v and (k.startswith(("attr.", "score.")) or k in EXTRA_PARAMS)
        )
        return cls(
            p.get("model") or None,
            status if status in ("ok", "error") else None,
            p.get("user") or None,
            p.get("session") or None,
            p.get("cursor") or None,
            p.get("q") or None,
            p.get("tag") or None,
            extra,
        )

    @property
    def filter(self) -> TraceFilter:
        """Raises :class:`InvalidInputError` for a malformed attr./score./range parameter."""
        return parse_trace_filter([*self._pairs(cursor=None), *self.extra])

    @property
    def filtered(self) -> bool:
        return any((self.model, self.status, self.user, self.session, self.q, self.tag, self.extra))

    def _pairs(self, **changes: str | None) -> list[tuple[str, str]]:
        values = {**vars(self), **changes}
        return [(k, v) for k, v in values.items() if v and k != "extra"]

    def query(self, **changes: str | None) -> str:
        return urlencode([*self._pairs(**changes), *self.extra])


class WebUI:
    def __init__(self, services: WebServices, authenticate: Authenticate, assets: Assets) -> None:
        self.services = services
        self.authenticate = authenticate
        self.assets = assets
        self.env = _environment()
        self._project_names: dict[str, str] = {}

    async def require_login(self, request: Request) -> Principal:
        try:
            return await self.authenticate(request)
        except AuthenticationError as exc:
            raise LoginRequired from exc

    async def project_name(self, project_id: str) -> str:
        if project_id not in self._project_names:  # projects are never renamed
            projects = await asyncio.to_thread(self.services.projects.list_projects)
            self._project_names.update({p.project_id: p.name for p in projects})
        return self._project_names.get(project_id, project_id)

    async def page(self, request: Request, who: Principal, template: str, **context: Any) -> HTMLResponse:
        context.update(principal=who, project_name=await self.project_name(who.project_id))
        return self.render(request, template, **context)

    def render(self, request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("principal", None)
        html = self.env.get_template(template).render(request=request, assets=self.assets.urls, **context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def not_found_page(request: Request) -> Response:
    ui: WebUI | None = getattr(request.app.state, "web", None)
    if ui is None:
        return HTMLResponse("<h1>Not found</h1>", status_code=404)
    # Sync (called from the app's error handler), so the cookie is not verified: it only picks the button.
    return ui.render(request, "not_found.html", status_code=404, signed_in=COOKIE in request.cookies)


def same_origin(request: Request) -> bool:
    """Forms post only from our own pages (a cross-site POST /login could sign a visitor into another key)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def mount_web(app: FastAPI, services: WebServices, authenticate: Authenticate) -> None:
    ui = WebUI(services, authenticate, Assets.discover())
    app.state.web = ui
    mount_assets(app, ui.assets)

    async def _login_required(request: Request, _: Exception) -> Response:
        return ui.to_login(request)

    app.add_exception_handler(LoginRequired, _login_required)
    router = APIRouter(include_in_schema=False)
    _auth_routes(router, ui)
    _trace_routes(router, ui)
    _home_and_dashboard(router, ui)
    from llmops.web.feedback_pages import feedback_routes  # it imports this module

    feedback_routes(router, ui, same_origin)
    from llmops.web.prompt_pages import prompt_routes  # it imports this module

    prompt_routes(router, ui, same_origin)
    from llmops.web.review_pages import review_routes  # review / online evals; it imports this module

    review_routes(router, ui, same_origin)
    from llmops.web.eval_pages import eval_routes  # evals: datasets + experiments; it imports this module

    eval_routes(router, ui, same_origin)
    from llmops.web.rag_pages import rag_routes  # RAG core; it imports this module

    rag_routes(router, ui)
    from llmops.web.cost_pages import cost_routes  # cost reports; it imports this module

    cost_routes(router, ui)
    from llmops.web.rag_health_pages import rag_health_routes  # RAG corpus health; it imports this module

    rag_health_routes(router, ui, same_origin)
    from llmops.web.cache_pages import cache_routes  # response caches; it imports this module

    cache_routes(router, ui)
    from llmops.web.batch_pages import batch_routes  # batches; it imports this module

    batch_routes(router, ui)
    app.include_router(router)


def _auth_routes(router: APIRouter, ui: WebUI) -> None:
    @router.get("/login")
    async def login_form(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        try:
            await ui.authenticate(request)
            return RedirectResponse(target, status_code=303)
        except AuthenticationError:
            return ui.render(request, "login.html", next=target)

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not same_origin(request):
            return ui.render(request, "login.html", status_code=403, next="/", error="Cross-site sign-in refused.")
        form = await request.form()
        key, target = str(form.get("key") or "").strip(), safe_next(str(form.get("next") or "/"))
        try:
            await ui.services.projects.authenticate(key)
        except AuthenticationError:
            error = "That key was not accepted. Check it and try again." if key else "Enter an API key."
            return ui.render(request, "login.html", status_code=401, next=target, error=error)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            key,
            max_age=COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.api_route("/logout", methods=["GET", "POST"])
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response


def _trace_routes(router: APIRouter, ui: WebUI) -> None:
    async def listing(who: Principal, q: TraceQuery) -> dict[str, Any]:
        try:
            page = await ui.services.traces.list_traces(who.project_id, q.filter, cursor=q.cursor, limit=PAGE_SIZE)
        except InvalidInputError as exc:  # a stale or hand-edited cursor
            return {"traces": [], "next_cursor": None, "error": exc.message, "q": q}
        return {"traces": page.items, "next_cursor": page.next_cursor, "error": None, "q": q}

    @router.get("/traces")
    async def traces(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        context = await listing(who, TraceQuery.parse(request))
        models = [m["id"] for m in ui.services.gateway.list_models()]
        return await ui.page(request, who, "traces.html", nav="traces", models=models, **context)

    @router.get("/ui/fragments/traces")
    async def traces_fragment(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        context = await listing(who, TraceQuery.parse(request))
        return ui.render(request, "_traces_table.html", **context)

    @router.get("/traces/{trace_id}")
    async def trace(trace_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """One page of a trace's spans (``WEB_SPAN_PAGE``, in start order): a 10,000-span trace never loads
        whole; bars stay relative to the whole trace so pages line up."""
        traces, cursor = ui.services.traces, request.query_params.get("cursor")
        try:
            summary, page = await traces.get_trace_page(who.project_id, trace_id.lower(), limit=WEB_SPAN_PAGE)
            if cursor:
                page = await traces.list_spans(who.project_id, summary.trace_id, cursor=cursor, limit=WEB_SPAN_PAGE)
        except (NotFoundError, InvalidInputError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        rows, total_ms = trace_view.waterfall(page.items, start_ns=summary.start_ns, end_ns=summary.end_ns)
        scores = await ui.services.scores.scores_of_traces(who.project_id, [summary.trace_id])
        context = {"trace": summary, "rows": rows, "total_ms": total_ms, "view": trace_view, "scores": scores}
        context |= {"next_cursor": page.next_cursor, "paged": bool(cursor) or page.next_cursor is not None}
        context["score_error"] = request.query_params.get("score_error")
        return await ui.page(request, who, "trace.html", nav="traces", **context)


def _home_and_dashboard(router: APIRouter, ui: WebUI) -> None:
    @router.get("/")
    async def home(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        page = await ui.services.traces.list_traces(who.project_id, TraceFilter(), limit=5)
        return await ui.page(
            request,
            who,
            "home.html",
            nav="home",
            base_url=base_url(request),
            models=ui.services.gateway.list_models(),
            traces=page.items,
            q=TraceQuery(),
        )

    @router.get("/dashboard")
    async def dashboard(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        name = request.query_params.get("range", "24h")
        name = name if name in RANGES else "24h"
        length_s, bucket_s = RANGES[name]
        end_s = (int(time.time()) // bucket_s + 1) * bucket_s  # whole buckets, the current one last
        query = MetricsQuery((end_s - length_s) * 10**9, end_s * 10**9, bucket_s, "model")
        metrics = await ui.services.traces.metrics(who.project_id, query)
        score_metrics = await ui.services.scores.metrics(who.project_id, query.start_ns, query.end_ns, bucket_s)
        return await ui.page(
            request,
            who,
            "dashboard.html",
            nav="dashboard",
            metrics=metrics,
            score_metrics=score_metrics,
            range=name,
            ranges=RANGES,
            length_s=length_s,
            bucket_s=bucket_s,
        )
