"""HTTP adapter for the OpenAI-compatible API under ``/v1``: parse, call the service, shape the answer."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from llmops.core.errors import InvalidInputError, PayloadTooLargeError
from llmops.core.ids import new_id, new_span_id, new_trace_id, parse_traceparent
from llmops.gateway.recording import CallContext
from llmops.gateway.service import GatewayService, Reply
from llmops.projects import Principal, ProjectService


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key") or request.headers.get("api-key")


async def read_json(request: Request, max_bytes: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
    if not body:
        raise InvalidInputError("request body is empty; send a JSON object", code="invalid_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", code="invalid_json") from exc


def json_response(body: Any, headers: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


def call_context(request: Request, principal: Principal, body: Any) -> CallContext:
    parent = parse_traceparent(request.headers.get("traceparent"))
    user = request.headers.get("x-llmops-user") or (body.get("user") if isinstance(body, dict) else None)
    return CallContext(
        principal=principal,
        request_id=new_id("req"),
        trace_id=parent[0] if parent else new_trace_id(),
        span_id=new_span_id(),
        parent_span_id=parent[1] if parent else None,
        user_id=str(user)[:256] if user else None,
        session_id=(request.headers.get("x-llmops-session") or "")[:256] or None,
        start_ns=time.time_ns(),
    )


def create_gateway_router(service: GatewayService, projects: ProjectService, *, max_body_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["gateway"])

    async def principal(request: Request) -> Principal:
        return await projects.authenticate(bearer_token(request))

    @router.post("/chat/completions", summary="Create a chat completion (OpenAI-compatible)")
    async def chat_completions(request: Request) -> Response:
        who = await principal(request)
        body = await read_json(request, max_body_bytes)
        reply = await service.chat(call_context(request, who, body), body)
        if isinstance(reply, Reply):
            return json_response(reply.body, reply.headers)
        headers = {**reply.headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(reply.events, media_type="text/event-stream", headers=headers)

    @router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)")
    async def embeddings(request: Request) -> Response:
        who = await principal(request)
        body = await read_json(request, max_body_bytes)
        reply = await service.embeddings(call_context(request, who, body), body)
        return json_response(reply.body, reply.headers)

    @router.get("/models", summary="List models (aliases) this gateway serves")
    async def list_models(request: Request) -> Response:
        await principal(request)
        return json_response({"object": "list", "data": service.list_models()})

    @router.get("/models/{model_id:path}", summary="Get one model")
    async def get_model(model_id: str, request: Request) -> Response:
        await principal(request)
        return json_response(service.get_model(model_id))

    return router
