"""HTTP adapter for corpus health under ``/api/rag/{collection}``: check, findings, status, health.
Every route is scoped to the caller's project (another project's collection is a 404)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.rag.health.models import DocumentHealth, Finding
from llmops.rag.health.service import HealthService


class Caller(Protocol):
    @property
    def project_id(self) -> str: ...


Authenticate = Callable[[Request], Awaitable[Caller]]


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_ids: list[str] | None = Field(
        None, description="Recompute only contradictions touching these documents (incremental check)."
    )


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["resolve", "ignore", "reopen"]


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id,
        "kind": f.kind,
        "subtype": f.subtype,
        "documents": [{"document_id": d, "source": s} for d, s in zip(f.document_ids, f.sources, strict=True)],
        "chunk_ids": list(f.chunk_ids),
        "passages": list(f.passages),
        "score": f.score,
        "status": f.status,
        "evidence": f.evidence,
    }


def health_json(h: DocumentHealth) -> dict[str, Any]:
    return {
        "document_id": h.document_id,
        "source": h.source,
        "score": h.score,
        "contradictions": h.contradictions,
        "duplicate": h.duplicate,
        "stale": h.stale,
        "never_retrieved": h.never_retrieved,
        "negative_feedback": h.negative_feedback,
        "retrievals": h.retrievals,
    }


def create_health_router(service: HealthService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api/rag", tags=["rag-health"])

    @router.post("/{collection}/check")
    async def check(collection: str, request: Request, body: CheckBody | None = None) -> Response:
        caller = await authenticate(request)
        ids = body.document_ids if body is not None else None
        result = await service.check(caller.project_id, collection, document_ids=ids)
        stats = result.stats
        return _json(
            {
                "findings": [finding_json(f) for f in result.findings],
                "stats": {
                    "documents": stats.documents,
                    "claims": stats.claims,
                    "candidate_pairs": stats.candidate_pairs,
                    "nli_pairs": stats.nli_pairs,
                    "seconds": round(stats.seconds, 3),
                },
                "notes": result.notes,
            }
        )

    @router.get("/{collection}/check")
    async def check_status(collection: str, request: Request) -> Response:
        """The background incremental check of the collection: queued / running / idle / error, last run."""
        caller = await authenticate(request)
        return _json(await asyncio.to_thread(service.check_status, caller.project_id, collection))

    @router.get("/{collection}/findings")
    async def findings(
        collection: str, request: Request, kind: str | None = None, status: str | None = None
    ) -> Response:
        caller = await authenticate(request)
        rows = service.list_findings(caller.project_id, collection, kind=kind, status=status)
        return _json({"findings": [finding_json(f) for f in rows]})

    @router.post("/{collection}/findings/{finding_id}")
    async def set_status(collection: str, finding_id: str, body: StatusBody, request: Request) -> Response:
        caller = await authenticate(request)
        return _json(finding_json(service.set_status(caller.project_id, collection, finding_id, body.action)))

    @router.get("/{collection}/health")
    async def health(collection: str, request: Request) -> Response:
        caller = await authenticate(request)
        return _json({"documents": [health_json(h) for h in service.health(caller.project_id, collection)]})

    return router
