"""Corpus-health page of a collection (``/rag/{collection}/health``): findings by kind (contradictions side by
side, each passage shown in its chunk with the conflicting claim and its differing values highlighted),
duplicates, stale / superseded documents, never-retrieved documents, negative feedback; per-document health
scores; the background check's state; a small bar chart (inline SVG, no script); resolve / ignore / reopen and
"check now" as same-origin form posts. Handlers parse, call :class:`llmops.rag.health.HealthService`, render;
another project's collection renders the 404 page."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape

from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.projects import Principal
from llmops.rag.health import Finding, HealthService
from llmops.rag.health.models import FINDING_KINDS, FINDING_STATUSES
from llmops.web.pages import WebUI

KIND_LABELS = {
    "contradiction": "Contradictions",
    "duplicate": "Duplicates",
    "stale": "Stale / superseded",
    "never_retrieved": "Never retrieved",
    "negative_feedback": "Negative feedback",
}


class HealthServices(Protocol):
    @property
    def rag_health(self) -> HealthService: ...


@dataclass(frozen=True)
class Side:
    document_id: str
    source: str
    html: Markup  # the passage in its chunk, the claim in <mark>, differing values in <strong>


@dataclass(frozen=True)
class FindingView:
    finding: Finding
    sides: list[Side]


def _loose(text: str) -> re.Pattern[str]:
    """``text`` as a pattern that tolerates any whitespace between its words."""
    return re.compile(r"\s+".join(re.escape(w) for w in text.split()))


def _emphasise(escaped: str, values: list[str]) -> str:
    for v in sorted({v for v in values if v.strip()}, key=len, reverse=True):
        e = str(escape(v))
        escaped = re.sub(rf"(?<![\w>]){re.escape(e)}(?!\w)", f'<strong class="value">{e}</strong>', escaped, count=1)
    return escaped


def highlight(context: str | None, claim: str, values: list[str]) -> Markup:
    """The chunk text (HTML-escaped) with ``claim`` in <mark> and ``values`` inside it in <strong>; the claim
    alone when the chunk is gone or the claim cannot be found in it."""
    claim_html = _emphasise(str(escape(claim)), values)
    if not context or not claim.strip():
        return Markup(f'<mark class="claim">{claim_html}</mark>')  # noqa: S704 - built from escaped parts
    m = _loose(claim).search(context)
    if m is None:
        return Markup(f'{escape(context)}<br><mark class="claim">{claim_html}</mark>')  # noqa: S704
    before, hit, after = context[: m.start()], context[m.start() : m.end()], context[m.end() :]
    inner = _emphasise(str(escape(hit)), values)
    return Markup(f'{escape(before)}<mark class="claim">{inner}</mark>{escape(after)}')  # noqa: S704


def finding_view(f: Finding, chunks: dict[str, str]) -> FindingView:
    mismatch = f.evidence.get("mismatch") or {}
    sides: list[Side] = []
    for i, (doc, source) in enumerate(zip(f.document_ids, f.sources, strict=True)):
        passage = f.passages[i] if i < len(f.passages) else ""
        if f.kind == "contradiction":
            # evidence["mismatch"]: dimension -> [values of the first claim, values of the second]; the finding
            # keeps both sides ordered by document id, so look the values up in whichever side contains them
            values = [v for pair in mismatch.values() for side in pair for v in side if v in passage]
            chunk = chunks.get(f.chunk_ids[i]) if i < len(f.chunk_ids) else None
            sides.append(Side(doc, source, highlight(chunk, passage, values)))
        else:
            sides.append(Side(doc, source, escape(passage)))
    return FindingView(f, sides)


def bar_chart(counts: dict[str, int], *, width: int = 360, bar_h: int = 18) -> Markup:
    """Open findings per kind as a horizontal bar chart (inline SVG)."""
    top = max(counts.values(), default=0) or 1
    rows = []
    for i, kind in enumerate(FINDING_KINDS):
        n = counts.get(kind, 0)
        w = round((width - 170) * n / top)
        y = i * (bar_h + 6)
        rows.append(
            f'<text x="0" y="{y + bar_h - 5}" class="chart-label">{escape(KIND_LABELS[kind])}</text>'
            f'<rect x="140" y="{y}" width="{w}" height="{bar_h}" class="bar-{kind}" rx="3"></rect>'
            f'<text x="{146 + w}" y="{y + bar_h - 5}" class="chart-value">{n}</text>'
        )
    height = len(FINDING_KINDS) * (bar_h + 6)
    return Markup(  # noqa: S704 - numbers and escaped labels only
        f'<svg class="health-chart" role="img" aria-label="Open findings per kind" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(rows)}</svg>'
    )


def rag_health_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    health = cast(HealthServices, ui.services).rag_health

    @router.get("/rag/{collection}/health")
    async def page(collection: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        status = request.query_params.get("status") or "open"
        status = status if status in (*FINDING_STATUSES, "all") else "open"
        try:
            context = await asyncio.to_thread(_context, health, who.project_id, collection, status)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        error = request.query_params.get("error")
        return await ui.page(request, who, "rag_health.html", nav="rag", error=error, **context)

    @router.post("/rag/{collection}/health/findings/{finding_id}")
    async def set_status(
        collection: str, finding_id: str, request: Request, who: Principal = Depends(ui.require_login)
    ) -> Response:
        """Resolve / ignore / reopen a finding (form post; same-origin only)."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        back = f"/rag/{quote(collection, safe='')}/health"
        status = str(form.get("status") or "")
        if status in (*FINDING_STATUSES, "all"):
            back += f"?status={status}"
        try:
            await asyncio.to_thread(
                health.set_status, who.project_id, collection, finding_id, str(form.get("action") or "")
            )
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        except InvalidInputError as exc:
            sep = "&" if "?" in back else "?"
            return RedirectResponse(f"{back}{sep}error={quote(exc.message)}", status_code=303)
        return RedirectResponse(f"{back}#finding-{quote(finding_id)}", status_code=303)

    @router.post("/rag/{collection}/health/check")
    async def check_now(collection: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """Queue a full check for the background worker (or run it here when the worker is off)."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        try:
            health.require_collection(who.project_id, collection)
            if health.background is not None:
                await health.background.schedule(who.project_id, collection, None)
            else:
                await health.check(who.project_id, collection)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        return RedirectResponse(f"/rag/{quote(collection, safe='')}/health", status_code=303)


def _context(health: HealthService, project_id: str, collection: str, status: str) -> dict[str, Any]:
    everything = health.list_findings(project_id, collection)
    shown = everything if status == "all" else [f for f in everything if f.status == status]
    contra_docs = sorted({d for f in shown if f.kind == "contradiction" for d in f.document_ids})
    chunks = health.chunk_texts(project_id, collection, contra_docs) if contra_docs else {}
    groups = {k: [finding_view(f, chunks) for f in shown if f.kind == k] for k in FINDING_KINDS}
    open_counts: Counter[str] = Counter(f.kind for f in everything if f.status == "open")
    docs = health.health(project_id, collection)
    return {
        "collection": collection,
        "status": status,
        "groups": groups,
        "labels": KIND_LABELS,
        "counts": {k: open_counts.get(k, 0) for k in FINDING_KINDS},
        "totals": Counter(f.status for f in everything),
        "chart": bar_chart(dict(open_counts)),
        "documents": docs,
        "mean_score": round(sum(d.score for d in docs) / len(docs), 1) if docs else None,
        "check": health.check_status(project_id, collection),
    }
