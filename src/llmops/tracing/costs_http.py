"""HTTP adapter for cost reports: ``GET /api/costs`` and ``GET /api/costs/what-if``, scoped to the caller's
project (see ``tracing.costs``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from llmops.core.timeparse import parse_time_ns
from llmops.projects import Principal
from llmops.tracing.costs import CostService, cost_query

Authenticate = Callable[[Request], Awaitable[Principal]]
Start = Annotated[str | None, Query(description="ISO 8601 or Unix seconds (default: 24 h / 30 days before end)")]
End = Annotated[str | None, Query(description="ISO 8601 or Unix seconds, exclusive (default: now)")]
Group = Annotated[str | None, Query(description="project | key | user | model | prompt | tag")]
Interval = Annotated[str, Query(description="hour | day (UTC buckets)")]


def create_costs_router(service: CostService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["costs"])

    @router.get("/costs", summary="Spend over time and by group, with savings from caches")
    async def costs(
        request: Request, start: Start = None, end: End = None, interval: Interval = "day", group_by: Group = None
    ) -> dict[str, Any]:
        who = await authenticate(request)
        q = cost_query(
            parse_time_ns(start, param="start"), parse_time_ns(end, param="end"), now_ns=time.time_ns(),
            interval=interval, group_by=group_by,
        )  # fmt: skip
        return await service.report(who.project_id, q)

    @router.get("/costs/what-if", summary="The same traffic priced with another model")
    async def what_if(
        request: Request,
        model: Annotated[str, Query(description="a model alias or a priced model name")],
        start: Start = None,
        end: End = None,
        group_by: Group = None,
    ) -> dict[str, Any]:
        who = await authenticate(request)
        q = cost_query(
            parse_time_ns(start, param="start"), parse_time_ns(end, param="end"), now_ns=time.time_ns(),
            group_by=group_by,
        )  # fmt: skip
        return await service.what_if(who.project_id, model, q)

    return router
