"""HTTP adapters for datasets and experiments: ``/api/datasets``, ``/api/experiments``.

Thin: parse, call one service method, shape the answer. Every route is scoped to the caller's project (another
project's dataset or run is a 404). Dataset items from traces use the same filter as ``GET /api/traces``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.errors import InvalidInputError
from llmops.evals.datasets import DatasetService, DatasetVersion, item_from_spans
from llmops.evals.experiments import ExperimentService, NewExperiment
from llmops.projects import Principal
from llmops.tracing import TraceService, parse_trace_filter

Authenticate = Callable[[Request], Awaitable[Principal]]
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_FROM_TRACES = 1000


class DatasetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    items: list[dict[str, Any]] = Field(default_factory=list, description="Initial items (version 1).")


class ItemsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=10000)


class FromTracesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str | None = Field(None, description="One trace (its first LLM span with an input, or span_id).")
    span_id: str | None = None
    filter: dict[str, str | list[str]] | None = Field(
        None, description="Bulk: a trace filter, as the /api/traces query parameters (model, tag, score.x, q…)."
    )
    limit: int = Field(100, ge=1, le=MAX_FROM_TRACES, description="Newest matching traces taken (bulk).")


class ExperimentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    version: int | None = Field(None, ge=1, description="Dataset version (default: latest, pinned at start).")
    target: dict[str, Any] = Field(description="{prompt: {name, version|label}, model?} | {model} | {http: {url}}")
    scorers: list[Any] = Field(description="Scorer specs, as for eval.yaml.")
    name: str = Field("", max_length=200)
    concurrency: int = 4
    timeout_s: float = 60.0
    run_id: str | None = Field(None, description="Name the run (e.g. the promotion gate's prompt:NAME@V/DATASET).")


def version_json(v: DatasetVersion, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    page = v.items[offset : offset + limit]
    return {
        "id": v.dataset_id,
        "name": v.name,
        "version": v.version,
        "item_count": len(v.items),
        "items": [i.to_dict() for i in page],
        "next_offset": offset + limit if 0 < limit and offset + limit < len(v.items) else None,
    }


def create_datasets_router(datasets: DatasetService, traces: TraceService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["datasets"])

    @router.get("/datasets", summary="The project's datasets with their latest version")
    async def list_datasets(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": await datasets.list_datasets(who.project_id)}

    @router.post("/datasets", status_code=201, summary="Create a dataset (items optional; 409 if it exists)")
    async def create_dataset(body: DatasetBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        v = await datasets.create_new(who.project_id, body.name, body.description, body.items)
        return version_json(v)

    @router.get("/datasets/{dataset}", summary="A dataset version (latest unless ?version=) with its first items")
    async def get_dataset(
        dataset: str,
        request: Request,
        version: int | None = Query(None, ge=0),
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        who = await authenticate(request)
        v = await datasets.get(who.project_id, dataset, version)
        return {
            **version_json(v, offset=offset, limit=limit),
            "versions": await datasets.versions(who.project_id, dataset),
        }

    @router.get("/datasets/{dataset}/items", summary="A page of a dataset version's items")
    async def list_items(
        dataset: str,
        request: Request,
        version: int | None = Query(None, ge=0),
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        who = await authenticate(request)
        v = version_json(await datasets.get(who.project_id, dataset, version), offset=offset, limit=limit)
        return {"data": v["items"], "version": v["version"], "next_offset": v["next_offset"]}

    @router.post("/datasets/{dataset}/items", status_code=201, summary="Append items (a new version)")
    async def add_items(dataset: str, body: ItemsBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        await datasets.get(who.project_id, dataset)  # 404 for an unknown dataset (no implicit create here)
        return version_json(await datasets.add_items(who.project_id, dataset, body.items), limit=0)

    @router.post(
        "/datasets/{dataset}/import", status_code=201, summary="Append a JSONL or CSV body (errors name the line)"
    )
    async def import_items(dataset: str, request: Request, format: Literal["jsonl", "csv"] = "jsonl") -> dict[str, Any]:
        who = await authenticate(request)
        await datasets.get(who.project_id, dataset)
        raw = await request.body()
        if len(raw) > MAX_IMPORT_BYTES:
            raise InvalidInputError(f"import body over {MAX_IMPORT_BYTES} bytes", param="file")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise InvalidInputError("import body must be UTF-8", param="file") from None
        return version_json(await datasets.import_text(who.project_id, dataset, text, fmt=format), limit=0)

    @router.get("/datasets/{dataset}/export", summary="A version as JSONL or CSV")
    async def export(
        dataset: str,
        request: Request,
        version: int | None = Query(None, ge=0),
        format: Literal["jsonl", "csv"] = "jsonl",
    ) -> Response:
        who = await authenticate(request)
        text = await datasets.export_text(who.project_id, dataset, version, format)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return Response(text, media_type=media)

    @router.post(
        "/datasets/{dataset}/items/from-traces",
        status_code=201,
        summary="Append items from one trace/span or from every trace a filter matches",
    )
    async def from_traces(dataset: str, body: FromTracesBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        await datasets.get(who.project_id, dataset)
        items = await trace_items(traces, who.project_id, body)
        v = await datasets.add_items(who.project_id, dataset, items)
        return {**version_json(v, limit=0), "added": len(items)}

    return router


async def trace_items(traces: TraceService, project_id: str, body: FromTracesBody) -> list[dict[str, Any]]:
    if (body.trace_id is None) == (body.filter is None):
        raise InvalidInputError("give trace_id (one trace) or filter (bulk), not both", param="trace_id")
    if body.trace_id is not None:
        _, spans = await traces.get_trace(project_id, body.trace_id.lower())
        return [item_from_spans(spans, body.span_id)]
    if body.span_id is not None:
        raise InvalidInputError("span_id needs a trace_id", param="span_id")
    assert body.filter is not None
    pairs = [(k, x) for k, v in body.filter.items() for x in (v if isinstance(v, list) else [v])]
    page = await traces.list_traces(project_id, parse_trace_filter(pairs), limit=min(body.limit, 200))
    found = list(page.items)
    while page.next_cursor and len(found) < body.limit:
        page = await traces.list_traces(
            project_id, parse_trace_filter(pairs), cursor=page.next_cursor, limit=min(body.limit - len(found), 200)
        )
        found.extend(page.items)
    items = []
    for t in found[: body.limit]:
        _, spans = await traces.get_trace(project_id, t.trace_id)
        if any(s.input is not None for s in spans):
            items.append(item_from_spans(spans))
    if not items:
        raise InvalidInputError("no trace matching the filter has a span with captured input", param="filter")
    return items


def create_experiments_router(experiments: ExperimentService, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["experiments"])

    @router.post("/experiments", status_code=202, summary="Create and start a run in the background")
    async def create(body: ExperimentBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        new = NewExperiment(
            dataset=body.dataset,
            target=body.target,
            scorers=body.scorers,
            name=body.name,
            version=body.version,
            concurrency=body.concurrency,
            timeout_s=body.timeout_s,
            run_id=body.run_id,
        )
        return await experiments.create(who, new)

    @router.get("/experiments", summary="The project's runs, newest first")
    async def list_runs(request: Request, limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": await experiments.list_runs(who.project_id, limit=limit)}

    @router.get("/experiments/compare", summary="Runs side by side: paired deltas with CI/p, cost, latency")
    async def compare(request: Request, runs: str = Query(description="baseline,candidate[,…]")) -> dict[str, Any]:
        who = await authenticate(request)
        return await experiments.compare(who.project_id, runs.split(","))

    @router.post("/experiments/{run_id:path}/cancel", summary="Cancel a running run (resumable)")
    async def cancel(run_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return await experiments.cancel(who.project_id, run_id)

    @router.post("/experiments/{run_id:path}/resume", status_code=202, summary="Resume a cancelled/failed run")
    async def resume(run_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return await experiments.resume(who, run_id)

    @router.get("/experiments/{run_id:path}", summary="A run with its summary and per-item results")
    async def get_run(run_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return await experiments.get_run_detail(who.project_id, run_id)

    return router
