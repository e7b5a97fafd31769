"""HTTP adapter for the prompt registry under ``/api/prompts``. Every route is scoped to the caller's
project (a prompt of another project is a 404, never a 403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.timeparse import iso
from llmops.prompts.models import Caller, Label, LabelMove, LabelState, Prompt, PromptSummary, PromptVersion
from llmops.prompts.service import PromptService

Authenticate = Callable[[Request], Awaitable[Caller]]


class PromptBody(BaseModel):
    """A prompt spec (see docs/prompts.md) plus the commit message and labels to move to the result."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    type: Literal["text", "chat"] | None = None
    description: str | None = None
    model: str | None = None
    params: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    tags: list[str] | None = None
    template: str | None = None
    messages: list[dict[str, Any]] | None = None
    message: str | None = Field(None, max_length=2000, description="Commit message of the version.")
    labels: list[str] = Field(default_factory=list, description="Labels to point at the pushed version.")

    def spec(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True, exclude={"message", "labels"})
        return {k: v for k, v in data.items() if v is not None}


class MoveBody(BaseModel):
    version: int = Field(ge=1)


class CanaryBody(BaseModel):
    version: int = Field(ge=1, description="The canary version.")
    percent: float = Field(gt=0, lt=100, description="Share of calls (%) sent to the canary version.")


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str | int = Field("latest", description="A version number or a label.")
    variables: dict[str, Any] = Field(default_factory=dict)
    coerce: bool = Field(False, description="Variables are strings to convert to the declared types.")


class ProtectedBody(BaseModel):
    labels: list[str]


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def state_json(s: LabelState) -> dict[str, Any]:
    return {"version": s.version, "canary_version": s.canary_version, "canary_percent": s.canary_percent}


def version_json(v: PromptVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "content_hash": v.content_hash,
        "message": v.message,
        "author": v.author,
        "created_at": iso(v.created_ns),
        "content": v.content.to_dict(),
    }


def label_json(lb: Label, prompt: Prompt | None = None) -> dict[str, Any]:
    out = {"label": lb.label, **state_json(lb.state), "updated_at": iso(lb.updated_ns), "updated_by": lb.updated_by}
    if prompt is not None:
        out["protected"] = lb.label in prompt.protected_labels
    return out


def move_json(m: LabelMove) -> dict[str, Any]:
    return {
        "label": m.label,
        "action": m.action,
        "from": state_json(m.before) if m.before else None,
        "to": state_json(m.after),
        "actor": m.actor,
        "moved_at": iso(m.moved_ns),
    }


def summary_json(s: PromptSummary) -> dict[str, Any]:
    return {
        "name": s.name,
        "type": s.type,
        "latest_version": s.latest_version,
        "labels": {k: state_json(v) for k, v in sorted(s.labels.items())},
        "tags": list(s.tags),
        "description": s.description,
        "updated_at": iso(s.updated_ns),
    }


def create_prompts_router(service: PromptService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api/prompts", tags=["prompts"])
    _read_routes(router, service, authenticate)
    _write_routes(router, service, authenticate)
    _label_routes(router, service, authenticate)
    return router


def _read_routes(router: APIRouter, service: PromptService, authenticate: Authenticate) -> None:
    @router.get("", summary="List the project's prompts")
    async def list_prompts(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [summary_json(s) for s in await service.list_prompts(who.project_id)]}

    @router.get("/{name}", summary="A prompt: protected labels, labels, versions (newest first)")
    async def get_prompt(name: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        prompt = await service.get_prompt(who.project_id, name)
        labels = await service.list_labels(who.project_id, name)
        versions = await service.list_versions(who.project_id, name)
        return {
            "name": prompt.name,
            "created_at": iso(prompt.created_ns),
            "protected_labels": list(prompt.protected_labels),
            "labels": [label_json(lb, prompt) for lb in labels],
            "versions": [version_json(v) for v in versions],
        }

    @router.get("/{name}/versions", summary="Every version, newest first")
    async def list_versions(name: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [version_json(v) for v in await service.list_versions(who.project_id, name)]}

    @router.get("/{name}/versions/{ref}", summary="One version, by number or by label")
    async def get_version(name: str, ref: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        version, label = await service.get_version(who.project_id, name, ref)
        return {**version_json(version), "label": label_json(label) if label else None}

    @router.get("/{name}/diff", summary="Unified diff of two versions (numbers or labels)")
    async def diff(name: str, request: Request, a: str = Query(...), b: str = Query(...)) -> dict[str, Any]:
        who = await authenticate(request)
        return {"a": a, "b": b, "diff": await service.diff(who.project_id, name, a, b)}

    @router.post("/{name}/render", summary="Render a version with variables")
    async def render(name: str, body: RenderBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        version, out = await service.render(who.project_id, name, body.ref, body.variables, coerce=body.coerce)
        key = "text" if isinstance(out, str) else "messages"
        return {"name": name, "version": version.version, key: out}


def _write_routes(router: APIRouter, service: PromptService, authenticate: Authenticate) -> None:
    @router.post("", status_code=201, summary="Create a prompt with its first version (409 if the name exists)")
    async def create_prompt(body: PromptBody, request: Request) -> Response:
        who = await authenticate(request)
        result = await service.create_prompt(who, body.spec(), message=body.message, labels=body.labels)
        return _json({**version_json(result.version), "created": True}, 201)

    @router.post(
        "/{name}/versions",
        summary="Push a version (201); content equal to the latest version changes nothing (200)",
    )
    async def push(name: str, body: PromptBody, request: Request, create: bool = False) -> Response:
        who = await authenticate(request)
        result = await service.push(
            who, body.spec(), name=name, message=body.message, create=create, labels=body.labels
        )
        return _json({**version_json(result.version), "created": result.created}, 201 if result.created else 200)

    @router.put("/{name}/protected-labels", summary="Set which labels only admin keys may move (admin)")
    async def protect(name: str, body: ProtectedBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        prompt = await service.set_protected_labels(who, name, body.labels)
        return {"name": prompt.name, "protected_labels": list(prompt.protected_labels)}


def _label_routes(router: APIRouter, service: PromptService, authenticate: Authenticate) -> None:
    @router.get("/{name}/labels", summary="Where each label points")
    async def labels(name: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        prompt = await service.get_prompt(who.project_id, name)
        return {"data": [label_json(lb, prompt) for lb in await service.list_labels(who.project_id, name)]}

    @router.put("/{name}/labels/{label}", summary="Point a label at a version (protected labels: admin)")
    async def move(name: str, label: str, body: MoveBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return label_json(await service.move_label(who, name, label, body.version))

    @router.put("/{name}/labels/{label}/canary", summary="Split a label: send percent % to another version")
    async def canary(name: str, label: str, body: CanaryBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return label_json(await service.set_canary(who, name, label, body.version, body.percent))

    @router.post("/{name}/labels/{label}/rollback", summary="Move a label back to its previous version")
    async def rollback(name: str, label: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return label_json(await service.rollback(who, name, label))

    @router.get("/{name}/history", summary="Label moves, newest first (who, when, from -> to)")
    async def history(name: str, request: Request, label: str | None = None) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [move_json(m) for m in await service.label_history(who.project_id, name, label=label)]}
