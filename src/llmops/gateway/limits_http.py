"""HTTP adapter for budgets (``/api/budgets``) and rate limits (``/api/rate-limits``), the caller's project only.

Reads need any key of the project; writes need an admin key (a plain key must not lift its own limit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.errors import PermissionDeniedError, StorageUnavailableError
from llmops.gateway.budgets import BudgetService, BudgetSpec
from llmops.gateway.ratelimits import RateLimitService
from llmops.projects import Principal

Authenticate = Callable[[Request], Awaitable[Principal]]


class BudgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scope: Literal["project", "key", "user", "tag"] = "project"
    subject: str | None = Field(None, max_length=256, description="Key id, end-user id or tag (not for project).")
    period: Literal["day", "month", "total"] = "month"
    limit_usd: float = Field(ge=0, le=1e9)
    mode: Literal["hard", "soft"] = "hard"
    exempt_admin: bool = False


class RateLimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["key", "user"]
    subject: str = Field(min_length=1, max_length=256, description="Key id, end-user id, or '*' (every user).")
    rpm: int | None = Field(None, gt=0, le=10**9)
    tpm: int | None = Field(None, gt=0, le=10**12)


def create_limits_router(budgets: BudgetService, rates: RateLimitService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["budgets"])

    async def admin(request: Request) -> Principal:
        who = await authenticate(request)
        if not who.is_admin:
            raise PermissionDeniedError("this action needs an admin key")
        return who

    @router.get("/budgets", summary="The project's budgets with their current spend and reservations")
    async def list_budgets(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": await budgets.list_budgets(who.project_id)}

    @router.post("/budgets", status_code=201, summary="Create a budget (admin)")
    async def create_budget(body: BudgetBody, request: Request) -> dict[str, Any]:
        who = await admin(request)
        created = await budgets.create_budget(who.project_id, BudgetSpec(**body.model_dump()))
        try:
            return await budgets.get_budget(who.project_id, created.budget_id)
        except StorageUnavailableError:  # created; its counters cannot be read right now (Redis down)
            return created.to_json()

    @router.get("/budgets/{budget_id}", summary="One budget with its current spend and reservations")
    async def get_budget(budget_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return await budgets.get_budget(who.project_id, budget_id)

    @router.delete("/budgets/{budget_id}", summary="Delete a budget (admin)")
    async def delete_budget(budget_id: str, request: Request) -> dict[str, Any]:
        who = await admin(request)
        await budgets.delete_budget(who.project_id, budget_id)
        return {"budget_id": budget_id, "deleted": True}

    @router.get("/rate-limits", summary="The project's key and end-user rate limits")
    async def list_rate_limits(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [r.to_json() for r in await rates.list_limits(who.project_id)]}

    @router.put("/rate-limits", summary="Set the rate limit of a key or end user (admin; replaces an earlier one)")
    async def set_rate_limit(body: RateLimitBody, request: Request) -> dict[str, Any]:
        who = await admin(request)
        saved = await rates.set_limit(who.project_id, body.scope, body.subject, rpm=body.rpm, tpm=body.tpm)
        return saved.to_json()

    @router.delete("/rate-limits/{limit_id}", summary="Delete a rate limit (admin)")
    async def delete_rate_limit(limit_id: str, request: Request) -> dict[str, Any]:
        who = await admin(request)
        await rates.delete_limit(who.project_id, limit_id)
        return {"limit_id": limit_id, "deleted": True}

    return router
