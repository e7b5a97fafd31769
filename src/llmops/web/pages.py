"""Web pages (placeholder until the UI lands)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response


def not_found_page(request: Request) -> Response:
    return HTMLResponse("<h1>Not found</h1>", status_code=404)


def mount_web(app: FastAPI, services: Any, authenticate: Any) -> None:
    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse("<h1>llmops</h1>")
