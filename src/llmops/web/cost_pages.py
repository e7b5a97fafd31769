"""The Costs page: spend over time (an inline SVG bar chart, no script), breakdown by model/key/user/prompt/tag,
savings and hit rate of the caches per route, a what-if repricing, and the gateway's deployment health.

Handlers parse, call :class:`llmops.tracing.costs.CostService` (scoped to the signed-in project) and render.
The chart geometry is computed here, so the page works without JavaScript and under the strict CSP.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from llmops.core.errors import InvalidInputError
from llmops.gateway import Router
from llmops.projects import Principal
from llmops.tracing.costs import CostService, cost_query
from llmops.web.pages import WebUI  # pages.py mounts these routes lazily, so no import cycle

# range name -> (length in seconds, interval)
COST_RANGES = {"24h": (86_400, "hour"), "7d": (7 * 86_400, "day"), "30d": (30 * 86_400, "day")}
GROUPS = ("model", "key", "user", "prompt", "tag")
CHART_W, CHART_H, CHART_PAD = 720, 180, 4


class CostServices(Protocol):
    @property
    def costs(self) -> CostService | None: ...

    @property
    def router(self) -> Router | None: ...


def chart(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of spend (and of savings, stacked above) per bucket, scaled to the tallest bucket."""
    tallest = max((s["cost_usd"] + s["saved_usd"] for s in series), default=0.0)
    top = tallest or 1.0
    width = CHART_W / max(1, len(series))
    bars = []
    for i, s in enumerate(series):
        spend_h = s["cost_usd"] / top * (CHART_H - CHART_PAD)
        saved_h = s["saved_usd"] / top * (CHART_H - CHART_PAD)
        x = round(i * width + width * 0.1, 2)
        bars.append(
            {
                "x": x,
                "w": round(max(1.0, width * 0.8), 2),
                "spend_y": round(CHART_H - spend_h, 2),
                "spend_h": round(spend_h, 2),
                "saved_y": round(CHART_H - spend_h - saved_h, 2),
                "saved_h": round(saved_h, 2),
                "label": s["start"],
                "cost_usd": s["cost_usd"],
                "saved_usd": s["saved_usd"],
                "requests": s["requests"],
            }
        )
    return {"bars": bars, "width": CHART_W, "height": CHART_H, "top": tallest}


def cost_routes(router: APIRouter, ui: WebUI) -> None:
    services = cast(CostServices, ui.services)

    @router.get("/costs")
    async def costs(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        assert services.costs is not None
        p = request.query_params
        name = p.get("range") or "7d"
        name = name if name in COST_RANGES else "7d"
        by = p.get("by") or "model"
        by = by if by in GROUPS else "model"
        length_s, interval = COST_RANGES[name]
        now = time.time_ns()
        q = cost_query(now - length_s * 10**9, now, now_ns=now, interval=interval, group_by=by)
        report = await services.costs.report(who.project_id, q)
        model = (p.get("what_if") or "").strip()[:200]
        what_if, what_if_error = None, None
        if model:
            try:
                what_if = await services.costs.what_if(who.project_id, model, q)
            except InvalidInputError as exc:
                what_if_error = exc.message
        health = services.router.health() if services.router is not None else []
        return await ui.page(
            request, who, "costs.html", nav="costs", report=report, chart=chart(report["series"]), range=name,
            ranges=COST_RANGES, by=by, groups=GROUPS, what_if=what_if, what_if_model=model,
            what_if_error=what_if_error, models=[m["id"] for m in ui.services.gateway.list_models()], health=health,
        )  # fmt: skip
