"""HTTP adapter for ``/v1/files`` and ``/v1/batches`` (OpenAI shapes, OpenAI error envelope), the caller's project
only; plus :class:`LiveTrafficMeter`, the ASGI wrapper that tells batch runners when live gateway calls are in flight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.errors import PayloadTooLargeError
from llmops.gateway.batches import BatchService, LiveTraffic
from llmops.gateway.files import FileService
from llmops.gateway.http import bearer_token, json_response
from llmops.projects import Principal, ProjectService

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
LIVE_PATHS = frozenset({"/v1/chat/completions", "/v1/embeddings"})


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(max_length=64)
    completion_window: str = Field(max_length=16)
    metadata: dict[str, Any] | None = None


def _page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def create_batch_router(
    files: FileService, batches: BatchService, projects: ProjectService, *, max_file_bytes: int
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["batches"])

    async def principal(request: Request) -> Principal:
        return await projects.authenticate(bearer_token(request.headers))

    @router.post("/files", summary="Upload a JSONL file (purpose=batch)")
    async def upload_file(request: Request, file: UploadFile = File(...), purpose: str = Form(...)) -> Response:
        who = await principal(request)
        if file.size is not None and file.size > max_file_bytes:
            raise PayloadTooLargeError(f"file exceeds {max_file_bytes} bytes", param="file")
        record = await files.upload(who.project_id, filename=file.filename or "", purpose=purpose, source=file.file)
        return json_response(record.to_openai())

    @router.get("/files", summary="List the project's files, newest first")
    async def list_files(
        request: Request,
        purpose: str | None = Query(None, max_length=32),
        after: str | None = Query(None, max_length=64),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> Response:
        who = await principal(request)
        rows, more = await files.list_files(who.project_id, purpose=purpose, after=after, limit=limit)
        return json_response(_page([r.to_openai() for r in rows], more))

    @router.get("/files/{file_id}", summary="One file's metadata")
    async def get_file(file_id: str, request: Request) -> Response:
        who = await principal(request)
        return json_response((await files.get(who.project_id, file_id)).to_openai())

    @router.get("/files/{file_id}/content", summary="A file's content")
    async def file_content(file_id: str, request: Request) -> Response:
        who = await principal(request)
        record, path = await files.content(who.project_id, file_id)
        return FileResponse(path, media_type="application/octet-stream", filename=record.filename)

    @router.delete("/files/{file_id}", summary="Delete a file (not while a running batch reads it)")
    async def delete_file(file_id: str, request: Request) -> Response:
        who = await principal(request)
        await files.delete(who.project_id, file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    @router.post("/batches", summary="Create a batch from an uploaded file")
    async def create_batch(body: BatchBody, request: Request) -> Response:
        who = await principal(request)
        batch = await batches.create(
            who,
            input_file_id=body.input_file_id,
            endpoint=body.endpoint,
            completion_window=body.completion_window,
            metadata=body.metadata,
        )
        return json_response(batch.to_openai())

    @router.get("/batches", summary="List the project's batches, newest first")
    async def list_batches(
        request: Request, after: str | None = Query(None, max_length=64), limit: int = Query(20, ge=1, le=100)
    ) -> Response:
        who = await principal(request)
        rows, more = await batches.list_batches(who.project_id, after=after, limit=limit)
        return json_response(_page([b.to_openai() for b in rows], more))

    @router.get("/batches/{batch_id}", summary="One batch with its progress")
    async def get_batch(batch_id: str, request: Request) -> Response:
        who = await principal(request)
        return json_response((await batches.get(who.project_id, batch_id)).to_openai())

    @router.post("/batches/{batch_id}/cancel", summary="Cancel a batch (cancelling, then cancelled)")
    async def cancel_batch(batch_id: str, request: Request) -> Response:
        who = await principal(request)
        return json_response((await batches.cancel(who.project_id, batch_id)).to_openai())

    return router


class LiveTrafficMeter:
    """Counts live POSTs to the hot gateway routes while they are served (batch lines yield to them)."""

    def __init__(self, app: ASGIApp, live: LiveTraffic) -> None:
        self.app = app
        self._live = live

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in LIVE_PATHS or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        self._live.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self._live.leave()
