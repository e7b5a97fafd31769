"""HTTP adapters for OTLP ingest (``POST /v1/traces``) and the project's trace settings
(``GET/PUT /api/project/settings``).

``/v1/traces`` speaks OTLP, not our envelope: success is an ``ExportTraceServiceResponse`` and every error a
``google.rpc.Status`` (``{"code", "message"}`` in JSON, the serialized message in protobuf), in the
request's encoding, because that is what OTLP exporters parse. Status codes follow the OTLP spec: 400 bad
data (not retried by exporters), 401 no/unknown key, 413 too large, 415 wrong Content-Type or
Content-Encoding, 503 + Retry-After when the database is unavailable (exporters retry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from llmops.core.errors import (
    AuthenticationError,
    LlmopsError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    error_envelope,
)
from llmops.projects import Principal
from llmops.tracing._otlp import status_body
from llmops.tracing.ingest import IngestService, error_media_type, media_type
from llmops.tracing.models import RedactionPolicy, TraceSettings
from llmops.tracing.privacy import MAX_CUSTOM_PATTERNS, MAX_RETENTION_DAYS, TraceSettingsService

Authenticate = Callable[[Request], Awaitable[Principal]]
# google.rpc.Code of each error class (first match wins)
_GRPC_CODES: list[tuple[type[LlmopsError], int]] = [
    (AuthenticationError, 16),  # UNAUTHENTICATED
    (PermissionDeniedError, 7),  # PERMISSION_DENIED
    (PayloadTooLargeError, 8),  # RESOURCE_EXHAUSTED
    (RateLimitedError, 8),
    (OverloadedError, 14),  # UNAVAILABLE
]


def _status_response(exc: LlmopsError, media: str) -> Response:
    status, headers, _ = error_envelope(exc)
    code = next((c for cls, c in _GRPC_CODES if isinstance(exc, cls)), 3 if status < 500 else 13)
    return Response(status_body(code, exc.message, media), status_code=status, media_type=media, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
    return bytes(body)


def create_ingest_router(service: IngestService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/v1/traces",
        summary="OTLP/HTTP trace export (protobuf or JSON, optionally gzip); 200 only after the commit",
        response_class=Response,
    )
    async def export_traces(request: Request) -> Response:
        media = error_media_type(request.headers.get("content-type"))
        try:
            who = await authenticate(request)
            media = media_type(request.headers.get("content-type"))
            body = await _read_body(request, service.max_body_bytes)
            result = await service.export(
                who.project_id, who.key_id, body, media=media, encoding=request.headers.get("content-encoding")
            )
        except LlmopsError as exc:
            return _status_response(exc, media)
        return Response(result.body, media_type=result.media_type)

    return router


class RedactionBody(BaseModel):
    secrets: bool = Field(True, description="API keys, tokens, JWTs, private keys, `Bearer …` (on by default)")
    emails: bool = False
    phones: bool = False
    cards: bool = Field(False, description="card numbers that pass the Luhn check")
    custom_patterns: list[str] = Field(
        default_factory=list,
        max_length=MAX_CUSTOM_PATTERNS,
        description="Python regexes; matches become [REDACTED:custom]",
    )


class SettingsBody(BaseModel):
    redaction: RedactionBody = Field(default_factory=RedactionBody)
    retention_days: int | None = Field(
        None, ge=0, le=MAX_RETENTION_DAYS, description="days traces are kept; null: the server default; 0: forever"
    )


def settings_json(s: TraceSettings, default_days: int) -> dict[str, Any]:
    redaction = asdict(s.redaction)
    redaction["custom_patterns"] = list(s.redaction.custom_patterns)
    days = default_days if s.retention_days is None else s.retention_days
    return {
        "redaction": redaction,
        "retention_days": s.retention_days,
        "effective_retention_days": days,
        "updated_ns": s.updated_ns or None,
    }


def create_settings_router(service: TraceSettingsService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["project settings"])

    async def admin(request: Request) -> Principal:
        who = await authenticate(request)
        if not who.is_admin:
            raise PermissionDeniedError("this action needs an admin key")
        return who

    @router.get("/project/settings", summary="The project's trace redaction and retention settings (admin)")
    async def get_settings(request: Request) -> dict[str, Any]:
        who = await admin(request)
        return settings_json(await service.get(who.project_id), service.default_retention_days)

    @router.put("/project/settings", summary="Replace the project's trace redaction and retention settings (admin)")
    async def put_settings(body: SettingsBody, request: Request) -> dict[str, Any]:
        who = await admin(request)
        r = body.redaction
        policy = RedactionPolicy(r.secrets, r.emails, r.phones, r.cards, tuple(r.custom_patterns))
        saved = await service.save(who.project_id, policy, body.retention_days)
        return settings_json(saved, service.default_retention_days)

    return router
