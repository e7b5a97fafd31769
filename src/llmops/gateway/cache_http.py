"""HTTP adapter for the response caches: ``GET /api/cache/stats``, ``DELETE /api/cache`` (the caller's project only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from llmops.gateway.cache import ResponseCache
from llmops.projects import Principal


def create_cache_router(cache: ResponseCache, authenticate: Callable[[Request], Awaitable[Principal]]) -> APIRouter:
    router = APIRouter(prefix="/api/cache", tags=["cache"])

    @router.get("/stats", summary="Per route: hit rate, measured wrong-hit rate, entries, saved USD")
    async def stats(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"project_id": who.project_id, "data": await cache.stats(who.project_id)}

    @router.delete("", summary="Delete every cached reply of the caller's project (exact and semantic)")
    async def purge(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"project_id": who.project_id, "deleted": await cache.purge(who.project_id)}

    return router
