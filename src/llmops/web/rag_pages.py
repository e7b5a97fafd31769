"""RAG pages: collections, one collection (documents, index versions, search playground), one document
(current chunks and version history). Handlers parse, call :class:`llmops.rag.RagService`, render; another
project's collection renders the 404 page. The playground searches through the service like the API, so each
search is a traced retrieval span."""

from __future__ import annotations

from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from llmops.core.errors import InvalidInputError, LlmopsError, NotFoundError
from llmops.projects import Principal
from llmops.rag import RagService
from llmops.web.pages import WebUI  # pages.py mounts these routes lazily, so no import cycle


class RagServices(Protocol):
    @property
    def rag(self) -> RagService: ...


def rag_routes(router: APIRouter, ui: WebUI) -> None:
    services = cast(RagServices, ui.services)

    @router.get("/rag")
    async def collections(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        items = await services.rag.list_collections(who.project_id)
        return await ui.page(request, who, "rag_collections.html", nav="rag", collections=items)

    @router.get("/rag/{collection}")
    async def collection(collection: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        try:
            context = await _collection_context(services.rag, who, collection)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        return await ui.page(request, who, "rag_collection.html", nav="rag", **context)

    @router.get("/rag/{collection}/search")
    async def search(collection: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        q = request.query_params
        context = await _search_context(services.rag, who, collection, q.get("q") or "", q.get("k"), q.get("mode"))
        if request.headers.get("hx-request"):
            return ui.render(request, "_rag_results.html", principal=who, **context)
        try:
            full = await _collection_context(services.rag, who, collection)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        return await ui.page(request, who, "rag_collection.html", nav="rag", **full, **context)

    @router.get("/rag/{collection}/documents/{document_id:path}")
    async def document(
        collection: str, document_id: str, request: Request, who: Principal = Depends(ui.require_login)
    ) -> Response:
        try:
            doc, chunks = await services.rag.get_document(who.project_id, collection, document_id)
            versions = await services.rag.list_versions(who.project_id, collection, document_id)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        return await ui.page(
            request, who, "rag_document.html", nav="rag", collection=collection, doc=doc, chunks=chunks,
            versions=versions,
        )  # fmt: skip


async def _collection_context(rag: RagService, who: Principal, collection: str) -> dict[str, Any]:
    coll = await rag.get_collection(who.project_id, collection)
    return {
        "coll": coll,
        "documents": await rag.list_documents(who.project_id, collection),
        "index_versions": await rag.list_index_versions(who.project_id, collection),
    }


async def _search_context(
    rag: RagService, who: Principal, collection: str, query: str, k: str | None, mode: str | None
) -> dict[str, Any]:
    mode = mode if mode in ("hybrid", "vector", "keyword") else "hybrid"
    k_value = int(k) if k and k.isdigit() else 5
    out: dict[str, Any] = {"query": query, "mode": mode, "k": k_value, "hits": None, "search_error": None}
    if not query.strip():
        return out
    try:
        out["hits"] = await rag.search(who.project_id, collection, query, k=k_value, mode=mode)  # type: ignore[arg-type]
    except (InvalidInputError, NotFoundError, LlmopsError) as exc:
        out["search_error"] = exc.message
    return out
