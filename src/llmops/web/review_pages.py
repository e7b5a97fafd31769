"""Pages for human review: annotation queues (``/review``), the keyboard-friendly review page
(``/review/{queue_id}``) and judge calibration (``/review/calibration``).

Keyboard (``static/review.js``): j/k or arrows move between items, number keys pick values (each press fills the
next config still unset), Enter submits (Ctrl+Enter inside the correction box), s skips. The forms are plain
posts (htmx-boosted: the server answers ``HX-Redirect`` to the next pending item), so the page works without
JavaScript too. Same rules as ``pages.py``: other projects' queues render the 404 page, content stays escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from llmops.evals.calibration import CalibrationService
from llmops.evals.online import OnlineRuleService, OnlineWorker, rule_json
from llmops.evals.review import QueueSource, ReviewItem, ReviewService, ScoreConfig, Submission
from llmops.projects import Principal
from llmops.tracing import parse_trace_filter
from llmops.web import trace_view
from llmops.web.pages import WebUI


class ReviewServices(Protocol):
    @property
    def review(self) -> ReviewService: ...

    @property
    def calibration(self) -> CalibrationService: ...

    @property
    def online_rules(self) -> OnlineRuleService: ...

    @property
    def online_worker(self) -> OnlineWorker: ...


def key_values(config: ScoreConfig) -> list[tuple[str, str]]:
    """(key, value) pairs the number keys pick for a config: booleans 1=true 2=false, categories 1..n, numeric
    integer levels when they fit on the digit keys."""
    if config.data_type == "boolean":
        return [("1", "true"), ("2", "false")]
    if config.data_type == "categorical":
        return [(str(i + 1), c) for i, c in enumerate(config.categories[:9])]
    lo, hi = int(config.min_value or 0), int(config.max_value or 0)
    if 0 <= lo and hi <= 9 and hi - lo <= 9:
        return [(str(v), str(v)) for v in range(lo, hi + 1)]
    return []


def _next_pending(items: list[ReviewItem], after: int) -> ReviewItem | None:
    pending = [i for i in items if i.status == "pending"]
    return next((i for i in pending if i.position > after), pending[0] if pending else None)


def review_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    services = cast(ReviewServices, ui.services)

    @router.get("/review")
    async def queues(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        queues = await services.review.list_queues(who.project_id)
        configs = await services.review.list_configs(who.project_id)
        worker = services.online_worker
        rules = [rule_json(r, worker.stats) for r in await services.online_rules.list_rules(who.project_id)]
        context = {"queues": queues, "configs": configs, "rules": rules, "backlog": worker.backlog}
        context["error"] = request.query_params.get("error")
        return await ui.page(request, who, "review_queues.html", nav="review", **context)

    @router.post("/review")
    async def create_queue(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """A queue from the form: name, configs, a trace filter as a query string, an optional sample size."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        try:
            pairs = parse_qsl(str(form.get("filter") or "").lstrip("?"), keep_blank_values=False)
            sample = str(form.get("sample") or "").strip()
            source = QueueSource(
                parse_trace_filter(pairs),
                tuple(pairs),
                int(str(form.get("limit") or 100)),
                int(sample) if sample else None,
            )
            queue = await services.review.create_queue(
                who.project_id,
                str(form.get("name") or ""),
                configs=[str(c) for c in form.getlist("configs")],
                source=source,
                reviewers=[r.strip() for r in str(form.get("reviewers") or "").split(",")],
            )
        except (InvalidInputError, NotFoundError, ConflictError, ValueError) as exc:
            return RedirectResponse(f"/review?error={quote(getattr(exc, 'message', str(exc)))}#new-queue", 303)
        return RedirectResponse(f"/review/{quote(queue.queue_id)}", status_code=303)

    @router.get("/review/calibration")
    async def calibration(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        judge, config = request.query_params.get("judge", ""), request.query_params.get("config", "")
        result, error = None, None
        if judge and config:
            try:
                result = await services.calibration.calibrate(who.project_id, judge, config)
            except (InvalidInputError, NotFoundError) as exc:
                error = exc.message
        context = {
            "judge": judge,
            "config": config,
            "result": result,
            "error": error,
            "judges": await services.calibration.judges(who.project_id),
            "configs": await services.review.list_configs(who.project_id),
        }
        return await ui.page(request, who, "review_calibration.html", nav="review", **context)

    @router.get("/review/{queue_id}")
    async def review(queue_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        svc = services.review
        try:
            queue = await svc.get_queue(who.project_id, queue_id)
            items = await svc.list_items(who.project_id, queue_id)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        wanted = request.query_params.get("item")
        current = next((i for i in items if i.item_id == wanted), None) or _next_pending(items, -1) or items[0]
        index = items.index(current)
        configs = [await svc.get_config(who.project_id, n) for n in queue.config_names]
        context: dict[str, Any] = {
            "queue": queue,
            "items": items,
            "current": current,
            "view": await svc.view_item(who.project_id, current),
            "configs": [(c, key_values(c)) for c in configs],
            "prev": items[index - 1] if index > 0 else None,
            "next": items[index + 1] if index + 1 < len(items) else None,
            "error": request.query_params.get("error"),
            "tv": trace_view,
        }
        return await ui.page(request, who, "review_item.html", nav="review", **context)

    def _go(request: Request, url: str) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    async def _after(who: Principal, queue_id: str, item: ReviewItem) -> str:
        items = await services.review.list_items(who.project_id, queue_id)
        nxt = _next_pending(items, item.position)
        return f"/review/{quote(queue_id)}" + (f"?item={quote(nxt.item_id)}" if nxt else f"?item={item.item_id}")

    @router.post("/review/{queue_id}/items/{item_id}")
    async def submit(
        queue_id: str, item_id: str, request: Request, who: Principal = Depends(ui.require_login)
    ) -> Response:
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        labels = {k[6:]: str(v) for k, v in form.multi_items() if k.startswith("label.") and str(v) != ""}
        correction = str(form.get("correction") or "").strip() or None
        comment = str(form.get("comment") or "").strip() or None
        here = f"/review/{quote(queue_id)}?item={quote(item_id)}"
        try:
            item = await services.review.submit(
                who.project_id,
                queue_id,
                item_id,
                Submission(labels, correction, comment),
                reviewer=who.key_name,
                reviewer_ids=[who.key_id],
            )
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        except (InvalidInputError, PermissionDeniedError) as exc:
            return _go(request, f"{here}&error={quote(exc.message)}")
        return _go(request, await _after(who, queue_id, item))

    @router.post("/review/{queue_id}/items/{item_id}/skip")
    async def skip(
        queue_id: str, item_id: str, request: Request, who: Principal = Depends(ui.require_login)
    ) -> Response:
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        here = f"/review/{quote(queue_id)}?item={quote(item_id)}"
        try:
            item = await services.review.skip(
                who.project_id, queue_id, item_id, reviewer=who.key_name, reviewer_ids=[who.key_id]
            )
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        except (InvalidInputError, PermissionDeniedError) as exc:
            return _go(request, f"{here}&error={quote(exc.message)}")
        return _go(request, await _after(who, queue_id, item))


__all__ = ["key_values", "review_routes"]
