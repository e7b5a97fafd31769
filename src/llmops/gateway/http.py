"""HTTP adapter for the OpenAI-compatible API under ``/v1``.

The two hot routes (``POST /v1/chat/completions``, ``POST /v1/embeddings``) are served by
:class:`GatewayFastPath`, a raw ASGI handler placed in front of the FastAPI app: the framework's
middleware and dependency layers cost more than the gateway's own work (docs/benchmarks.md). The same
routes are also declared on the FastAPI router so they appear in ``/openapi.json``; everything else under
``/v1`` goes through FastAPI normally.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from llmops.core.errors import InvalidInputError, LlmopsError, PayloadTooLargeError, error_envelope
from llmops.core.ids import new_id, new_span_id, new_trace_id, parse_traceparent
from llmops.gateway.recording import CallContext, parse_tags
from llmops.gateway.service import GatewayService, Reply, StreamReply
from llmops.projects import Principal, ProjectService

log = logging.getLogger("llmops.gateway")
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key") or headers.get("api-key")


def json_response(body: Any, headers: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidInputError("request body is empty; send a JSON object", code="invalid_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", code="invalid_json") from exc


def call_context(headers: Mapping[str, str], principal: Principal, body: Any) -> CallContext:
    parent = parse_traceparent(headers.get("traceparent"))
    user = headers.get("x-llmops-user") or (body.get("user") if isinstance(body, dict) else None)
    return CallContext(
        principal=principal,
        request_id=new_id("req"),
        trace_id=parent[0] if parent else new_trace_id(),
        span_id=new_span_id(),
        parent_span_id=parent[1] if parent else None,
        user_id=str(user)[:256] if user else None,
        session_id=(headers.get("x-llmops-session") or "")[:256] or None,
        start_ns=time.time_ns(),
        rag=headers.get("x-llmops-rag"),
        cache=headers.get("x-llmops-cache"),  # response caches (gateway/cache.py)
        cache_ttl=headers.get("x-llmops-cache-ttl"),
        tags=parse_tags(headers.get("x-llmops-tags"), body),  # budgets by tag, cost reports (llmops.tags)
    )


async def _read_body(receive: Any, headers: Mapping[str, str], max_bytes: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInputError("client disconnected while sending the body", code="client_disconnected")
        body += message.get("body", b"")
        if len(body) > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds {max_bytes} bytes")
        if not message.get("more_body", False):
            return bytes(body)


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class GatewayFastPath:
    """Raw ASGI front for the hot POST routes; anything else is passed to ``app``."""

    def __init__(self, app: ASGIApp, service: GatewayService, projects: ProjectService, *, max_body_bytes: int) -> None:
        self._app = app
        self._projects = projects
        self._max = max_body_bytes
        self._handlers = {"/v1/chat/completions": service.chat, "/v1/embeddings": service.embeddings}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler = self._handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await self._projects.authenticate(bearer_token(headers))
            body = parse_json(await _read_body(receive, headers, self._max))
            reply = await handler(call_context(headers, principal, body), body)
        except LlmopsError as exc:
            status, extra, err = error_envelope(exc)
            await self._send(send, status, _JSON + _encode_headers(extra), orjson.dumps(err))
            return
        except Exception:  # process boundary: log with context, answer in the envelope
            log.exception("unhandled error on POST %s", scope.get("path"))
            err = {
                "error": {
                    "message": "internal server error",
                    "type": "server_error",
                    "param": None,
                    "code": "internal_error",
                }
            }
            await self._send(send, 500, _JSON, orjson.dumps(err))
            return
        if isinstance(reply, Reply):
            await self._send(send, 200, _JSON + _encode_headers(reply.headers), orjson.dumps(reply.body))
        else:
            await self._stream(send, reply)

    @staticmethod
    async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        framed = [*headers, (b"content-length", str(len(body)).encode())]  # not chunked: less for clients to parse
        await send({"type": "http.response.start", "status": status, "headers": framed})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _stream(send: Any, reply: StreamReply) -> None:
        events = reply.events
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE + _encode_headers(reply.headers)})
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def create_gateway_router(service: GatewayService, projects: ProjectService) -> APIRouter:
    """FastAPI routes for /v1. The two POST routes are answered by GatewayFastPath before reaching
    FastAPI; they are declared here so that /openapi.json documents them."""
    router = APIRouter(prefix="/v1", tags=["gateway"])

    async def principal(request: Request) -> Principal:
        return await projects.authenticate(bearer_token(request.headers))

    @router.post("/chat/completions", summary="Create a chat completion (OpenAI-compatible; SSE when stream=true)")
    async def chat_completions(request: Request) -> Response:  # pragma: no cover - served by GatewayFastPath
        raise InvalidInputError("served by the gateway fast path")

    @router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)")
    async def embeddings(request: Request) -> Response:  # pragma: no cover - served by GatewayFastPath
        raise InvalidInputError("served by the gateway fast path")

    @router.get("/models", summary="List models (aliases) this gateway serves")
    async def list_models(request: Request) -> Response:
        await principal(request)
        return json_response({"object": "list", "data": service.list_models()})

    @router.get("/models/{model_id:path}", summary="Get one model")
    async def get_model(model_id: str, request: Request) -> Response:
        await principal(request)
        return json_response(service.get_model(model_id))

    return router
