"""The Batches page: the signed-in project's batches (newest first) with status, a progress bar (completed and
failed of total), metadata and links to the output / error files. Reads :class:`llmops.gateway.batches.BatchService`
scoped to the project; refreshes itself while a batch is active (a meta refresh: no script, strict CSP).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from llmops.projects import Principal
from llmops.web.pages import WebUI  # pages.py mounts these routes lazily, so no import cycle

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")


class BatchServices(Protocol):
    @property
    def batches(self) -> Any: ...


def batch_routes(router: APIRouter, ui: WebUI) -> None:
    services = cast(BatchServices, ui.services)

    @router.get("/batches")
    async def batches_page(request: Request, who: Principal = Depends(ui.require_login)) -> Response:  # noqa: B008
        rows: list[Any] = []
        if services.batches is not None:
            rows, _ = await services.batches.list_batches(who.project_id, limit=100)
        data = [b.to_openai() for b in rows]
        active = any(b["status"] in ACTIVE for b in data)
        return await ui.page(request, who, "batches.html", nav="batches", batches=data, refresh=active)
