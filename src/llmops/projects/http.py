"""HTTP adapter for API keys under ``/api/keys`` (admin keys manage their own project's keys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from llmops.core.errors import PermissionDeniedError
from llmops.projects.models import ApiKey, Principal
from llmops.projects.service import ProjectService

Authenticate = Callable[[Request], Awaitable[Principal]]


class CreateKeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    admin: bool = False


def key_json(k: ApiKey) -> dict[str, Any]:
    return {**asdict(k), "active": k.active}


def create_projects_router(service: ProjectService, authenticate: Authenticate) -> APIRouter:
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
        return {"data": [key_json(k) for k in keys]}

    @router.post("/keys", status_code=201, summary="Create a key in the caller's project (admin)")
    async def create_key(body: CreateKeyBody, request: Request) -> dict[str, Any]:
        who = await admin(request)
        created = service.create_key_in(who.project_id, body.name, is_admin=body.admin)
        return {**key_json(created.key), "secret": created.secret}

    @router.delete("/keys/{key_id}", summary="Revoke a key (admin)")
    async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
        who = await admin(request)
        service.revoke_key(key_id, project_id=who.project_id)
        return {"key_id": key_id, "revoked": True}

    return router
