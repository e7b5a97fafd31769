"""HTTP adapter for API keys under ``/api/keys`` (admin keys manage their own project's keys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from llmops.core.errors import PermissionDeniedError
from llmops.projects.models import ApiKey, Principal
from llmops.projects.service import KeyLimits, ProjectService

Authenticate = Callable[[Request], Awaitable[Principal]]


class CreateKeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    admin: bool = False
    rpm: int | None = Field(None, gt=0, le=10**9, description="Requests per minute for this key (a rate limit).")
    tpm: int | None = Field(None, gt=0, le=10**12, description="Tokens per minute for this key (a rate limit).")


def key_json(k: ApiKey) -> dict[str, Any]:
    return {**asdict(k), "active": k.active}


def create_projects_router(
    service: ProjectService, authenticate: Authenticate, *, key_limits: KeyLimits | None = None
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["keys"])

    async def admin(request: Request) -> Principal:
        who = await authenticate(request)
        if not who.is_admin:
            raise PermissionDeniedError("this action needs an admin key")
        return who

    @router.get("/me", summary="The calling key and its project")
    async def me(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return asdict(who)

    @router.get("/keys", summary="List the project's keys (admin)")
    async def list_keys(request: Request) -> dict[str, Any]:
        who = await admin(request)
        keys = [k for k in service.list_keys() if k.project_id == who.project_id]
        limits = await key_limits.key_limits(who.project_id) if key_limits is not None else {}
        rows = []
        for k in keys:
            rpm, tpm = limits.get(k.key_id, (None, None))
            rows.append({**key_json(k), "rpm": rpm, "tpm": tpm})
        return {"data": rows}

    @router.post("/keys", status_code=201, summary="Create a key in the caller's project (admin)")
    async def create_key(body: CreateKeyBody, request: Request) -> dict[str, Any]:
        who = await admin(request)
        created = await service.create_limited_key(
            who.project_id, body.name, key_limits, is_admin=body.admin, rpm=body.rpm, tpm=body.tpm
        )
        return {**key_json(created.key), "rpm": body.rpm, "tpm": body.tpm, "secret": created.secret}

    @router.delete("/keys/{key_id}", summary="Revoke a key (admin)")
    async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
        who = await admin(request)
        service.revoke_key(key_id, project_id=who.project_id)
        return {"key_id": key_id, "revoked": True}

    return router
