"""HTTP adapters for human review, judge calibration and online rules: ``/api/score-configs``,
``/api/review-queues``, ``/api/calibration``, ``/api/online-rules``. Every route is scoped to the caller's
project (another project's queue or rule is a 404). A reviewer is the calling key (its name or id)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.core.timeparse import iso
from llmops.evals.calibration import CalibrationService
from llmops.evals.online import NewRule, OnlineRuleService, OnlineWorker, RuleFilter, rule_json
from llmops.evals.review import ItemView, NewScoreConfig, Queue, QueueSource, ReviewItem, ReviewService, Submission
from llmops.projects import Principal
from llmops.tracing import parse_trace_filter

Authenticate = Callable[[Request], Awaitable[Principal]]


class ConfigBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    data_type: str = Field(description="numeric, boolean or categorical")
    min: float | None = None
    max: float | None = None
    categories: list[str] = Field(default_factory=list)
    description: str | None = Field(None, max_length=2000)


class QueueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    configs: list[str] = Field(description="Score config names reviewers label.")
    reviewers: list[str] = Field(default_factory=list, description="Key names or ids allowed to review (all if empty).")
    description: str | None = Field(None, max_length=2000)
    filter: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Trace filter, as the /api/traces query parameters (model, tag, score.x…)."
    )
    limit: int = Field(100, description="Newest matching traces considered.")
    sample: int | None = Field(None, description="Pick this many at random among them.")
    seed: int | None = None
    trace_ids: list[str] = Field(default_factory=list, description="Explicit traces (e.g. experiment items' traces).")

    def source(self) -> QueueSource:
        pairs = [(k, x) for k, v in self.filter.items() for x in (v if isinstance(v, list) else [v])]
        return QueueSource(
            parse_trace_filter(pairs), tuple(pairs), self.limit, self.sample, tuple(self.trace_ids), self.seed
        )


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, Any]
    correction: str | None = None
    comment: str | None = Field(None, max_length=4000)


class DatasetBody(BaseModel):
    dataset: str


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scorers: list[dict[str, Any]]
    model: str | None = None
    trace_name: str | None = None
    tags: list[str] = Field(default_factory=list)
    sample_rate: float = 1.0
    delay_s: float = 30.0
    enabled: bool = True


class EnabledBody(BaseModel):
    enabled: bool


def queue_json(q: Queue) -> dict[str, Any]:
    return {
        "queue_id": q.queue_id,
        "name": q.name,
        "description": q.description,
        "configs": list(q.config_names),
        "reviewers": list(q.reviewers),
        "source": dict(q.source),
        "counts": dict(q.counts),
        "created_at": iso(q.created_ns),
    }


def item_json(item: ReviewItem, view: ItemView | None = None) -> dict[str, Any]:
    out = {
        "item_id": item.item_id,
        "position": item.position,
        "trace_id": item.trace_id,
        "status": item.status,
        "reviewer": item.reviewer,
        "labels": dict(item.labels),
        "correction": item.correction,
        "comment": item.comment,
        "updated_at": iso(item.updated_ns),
    }
    if view is not None:
        out |= {"input": view.input, "output": view.output, "spans": view.spans}
    return out


def create_review_router(
    review: ReviewService, calibration: CalibrationService, authenticate: Authenticate
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["review"])
    _config_routes(router, review, authenticate)
    _queue_routes(router, review, authenticate)

    @router.get("/calibration", summary="A judge's agreement with human labels (κ, confusion matrix)")
    async def calibrate(judge: str, config: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return (await calibration.calibrate(who.project_id, judge, config)).to_dict()

    return router


def _config_routes(router: APIRouter, review: ReviewService, authenticate: Authenticate) -> None:
    @router.get("/score-configs", summary="The project's score configurations")
    async def list_configs(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [c.to_dict() for c in await review.list_configs(who.project_id)]}

    @router.post("/score-configs", status_code=201, summary="Create a score configuration (409 if the name exists)")
    async def create_config(body: ConfigBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        new = NewScoreConfig(body.name, body.data_type, body.min, body.max, body.categories, body.description)
        return (await review.create_config(who.project_id, new)).to_dict()

    @router.get("/score-configs/{name}", summary="One score configuration")
    async def get_config(name: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return (await review.get_config(who.project_id, name)).to_dict()

    @router.delete("/score-configs/{name}", status_code=204, summary="Delete a score configuration")
    async def delete_config(name: str, request: Request) -> Response:
        who = await authenticate(request)
        await review.delete_config(who.project_id, name)
        return Response(status_code=204)


def _queue_routes(router: APIRouter, review: ReviewService, authenticate: Authenticate) -> None:
    @router.get("/review-queues", summary="The project's annotation queues with item counts")
    async def list_queues(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [queue_json(q) for q in await review.list_queues(who.project_id)]}

    @router.post("/review-queues", status_code=201, summary="Create a queue from a trace filter, sample or ids")
    async def create_queue(body: QueueBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        queue = await review.create_queue(
            who.project_id,
            body.name,
            configs=body.configs,
            source=body.source(),
            reviewers=body.reviewers,
            description=body.description,
        )
        return queue_json(queue)

    @router.get("/review-queues/{queue_id}", summary="One queue")
    async def get_queue(queue_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return queue_json(await review.get_queue(who.project_id, queue_id))

    @router.get("/review-queues/{queue_id}/items", summary="A queue's items in order (status: pending/done/skipped)")
    async def list_items(queue_id: str, request: Request, status: str | None = None) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": [item_json(i) for i in await review.list_items(who.project_id, queue_id, status=status)]}

    @router.get("/review-queues/{queue_id}/items/{item_id}", summary="One item with its trace's input/output/spans")
    async def get_item(queue_id: str, item_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        item = await review.get_item(who.project_id, queue_id, item_id)
        return item_json(item, await review.view_item(who.project_id, item))

    @router.post("/review-queues/{queue_id}/items/{item_id}", summary="Submit labels (and a corrected output)")
    async def submit(queue_id: str, item_id: str, body: SubmitBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        item = await review.submit(
            who.project_id,
            queue_id,
            item_id,
            Submission(body.labels, body.correction, body.comment),
            reviewer=who.key_name,
            reviewer_ids=[who.key_id],
        )
        return item_json(item)

    @router.post("/review-queues/{queue_id}/items/{item_id}/skip", summary="Skip an item")
    async def skip(queue_id: str, item_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        item = await review.skip(who.project_id, queue_id, item_id, reviewer=who.key_name, reviewer_ids=[who.key_id])
        return item_json(item)

    @router.get("/review-queues/{queue_id}/corrections", summary="Corrected outputs as dataset items")
    async def corrections(queue_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return {"data": await review.corrections(who.project_id, queue_id)}

    @router.post("/review-queues/{queue_id}/corrections/dataset", summary="Add corrections to a dataset")
    async def to_dataset(queue_id: str, body: DatasetBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return await review.export_corrections(who.project_id, queue_id, body.dataset)


def create_online_router(service: OnlineRuleService, worker: OnlineWorker, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(prefix="/api/online-rules", tags=["online evaluation"])

    @router.get("", summary="Rules with their counters, and the worker's backlog and drops")
    async def list_rules(request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        rules = await service.list_rules(who.project_id)
        s = worker.stats
        own_dropped = sum(s.dropped_by_rule.get(r.rule_id, 0) for r in rules)
        return {
            "data": [rule_json(r, s) for r in rules],
            "worker": {"backlog": worker.backlog, "dropped": own_dropped},
        }

    @router.post("", status_code=201, summary="Create a rule (scorer specs as for experiments)")
    async def create_rule(body: RuleBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        new = NewRule(
            body.name,
            body.scorers,
            RuleFilter(body.model, body.trace_name, tuple(body.tags)),
            body.sample_rate,
            body.delay_s,
            body.enabled,
        )
        return rule_json(await service.create_rule(who.project_id, new), worker.stats)

    @router.get("/{rule_id}", summary="One rule")
    async def get_rule(rule_id: str, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return rule_json(await service.get_rule(who.project_id, rule_id), worker.stats)

    @router.patch("/{rule_id}", summary="Enable or disable a rule")
    async def patch_rule(rule_id: str, body: EnabledBody, request: Request) -> dict[str, Any]:
        who = await authenticate(request)
        return rule_json(await service.set_enabled(who.project_id, rule_id, body.enabled), worker.stats)

    @router.delete("/{rule_id}", status_code=204, summary="Delete a rule")
    async def delete_rule(rule_id: str, request: Request) -> Response:
        who = await authenticate(request)
        await service.delete_rule(who.project_id, rule_id)
        return Response(status_code=204)

    return router
