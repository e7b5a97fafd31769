"""The Cache page: per route of the signed-in project, whether the exact and semantic caches are on, hit rate,
hits and misses, live entries, saved USD and the wrong-hit rate measured on the shipped labelled set at the
route's semantic threshold. Reads :meth:`llmops.gateway.cache.ResponseCache.stats` (scoped to the project)."""

from __future__ import annotations

from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from llmops.projects import Principal
from llmops.web.pages import WebUI  # pages.py mounts these routes lazily, so no import cycle


class CacheServices(Protocol):
    @property
    def cache(self) -> Any: ...


def cache_routes(router: APIRouter, ui: WebUI) -> None:
    services = cast(CacheServices, ui.services)

    @router.get("/cache")
    async def cache_page(request: Request, who: Principal = Depends(ui.require_login)) -> Response:  # noqa: B008
        rows = await services.cache.stats(who.project_id) if services.cache is not None else []
        return await ui.page(request, who, "cache.html", nav="cache", rows=rows)
