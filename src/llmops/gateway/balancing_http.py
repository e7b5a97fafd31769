"""HTTP adapter for deployment health: ``GET /api/gateway/deployments`` (see ``gateway.balancing``).

Health is about the server's configured upstreams, not tenant data: every signed-in key may read it. It carries
no request content (errors are type, status and code only) and no upstream URL or key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from llmops.gateway.routing import Router
from llmops.projects import Principal

Authenticate = Callable[[Request], Awaitable[Principal]]


def create_balancing_router(router: Router, authenticate: Authenticate) -> APIRouter:
    api = APIRouter(prefix="/api/gateway", tags=["gateway"])

    @api.get("/deployments", summary="Each alias's strategy and its deployments' health")
    async def deployments(request: Request) -> dict[str, Any]:
        """State (healthy | cooldown | half-open), in-flight requests, EWMA latency, recent errors,
        cooldown end (Unix seconds), per deployment of every alias."""
        await authenticate(request)
        return {"data": router.health()}

    return api
