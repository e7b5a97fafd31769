"""The composition root: builds every store, service and router, and maps errors to envelopes.

``create_app(settings)`` is the only place that knows every part. Tests build apps through it with
their own settings (tmp ``LLMOPS_HOME``, Postgres URL, config pointing at a fake upstream).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib  # review / online evals: the evaluator registry, when installed
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from llmops import __version__
from llmops.classifiers.nli import NliModel  # RAG corpus health + scorers: one shared NLI model
from llmops.core.clock import Clock, SystemClock
from llmops.core.db import WalCheckpointer, create_db_engine, upgrade
from llmops.core.errors import InvalidInputError, LlmopsError, error_envelope
from llmops.core.http import HttpClient, create_http_client
from llmops.core.settings import Settings
from llmops.evals._sql_review import SqlReviewStore  # review / online evals
from llmops.evals.calibration import CalibrationService  # review / online evals
from llmops.evals.online import ONLINE_KEY_ID, EvaluatorFactory, OnlineRuleService, OnlineWorker  # review/online
from llmops.evals.review import ReviewService  # review / online evals
from llmops.evals.review_http import create_online_router, create_review_router  # review / online evals
from llmops.gateway import (
    GatewayService,
    OnnxEmbedder,
    PriceTable,
    ProviderFactory,
    Router,
    build_routes,
    create_gateway_router,
    load_gateway_config,
)
from llmops.gateway.balancing_http import create_balancing_router  # load balancing
from llmops.gateway.batches import BatchService  # batches
from llmops.gateway.batches_http import LiveTrafficMeter, create_batch_router  # batches
from llmops.gateway.cache import ResponseCache  # response caches
from llmops.gateway.cache_http import create_cache_router  # response caches
from llmops.gateway.config import GatewayConfig  # response caches
from llmops.gateway.files import FileService  # batches
from llmops.gateway.http import GatewayFastPath, bearer_token, json_response
from llmops.gateway.limits_http import create_limits_router  # budgets + rate limits
from llmops.gateway.ratelimits import GatewayLimits, RateLimitService  # budgets + rate limits
from llmops.projects import CreatedKey, Principal, ProjectService
from llmops.projects._sql import SqlProjectStore
from llmops.projects.http import create_projects_router
from llmops.prompts import PromptService
from llmops.prompts._sql import SqlPromptStore
from llmops.prompts.http import create_prompts_router
from llmops.rag import RagService  # RAG core
from llmops.rag._health_sql import SqlFeedbackSource, SqlFindingStore  # RAG corpus health
from llmops.rag._sql import SqlRagStore  # RAG core
from llmops.rag.health import HealthService  # RAG corpus health
from llmops.rag.health.adjudicator import GatewayAdjudicator  # RAG corpus health
from llmops.rag.health.http import create_health_router  # RAG corpus health
from llmops.rag.http import create_rag_router  # RAG core
from llmops.rag.retriever import RagRetriever  # RAG core
from llmops.tracing import ScoreService, SessionService, SpanRecorder, TraceExporter, TraceService
from llmops.tracing._sql import SqlTraceStore
from llmops.tracing._sql_costs import SqlCostStore  # cost reports
from llmops.tracing._sql_scores import SqlScoreStore
from llmops.tracing._sql_sessions import SqlSessionStore
from llmops.tracing._sql_settings import SqlTraceSettingsStore
from llmops.tracing.costs import CostService, ModelPrice, PriceLookup  # cost reports
from llmops.tracing.costs_http import create_costs_router  # cost reports
from llmops.tracing.http import create_tracing_router
from llmops.tracing.http_feedback import create_feedback_router
from llmops.tracing.ingest import IngestService
from llmops.tracing.ingest_http import create_ingest_router, create_settings_router
from llmops.tracing.privacy import RedactingWriter, TraceSettingsService
from llmops.tracing.retention import RetentionJob

log = logging.getLogger("llmops")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    projects: ProjectService
    traces: TraceService
    recorder: SpanRecorder
    gateway: GatewayService
    embedder: OnnxEmbedder
    factory: ProviderFactory
    http: HttpClient
    bootstrap_key: CreatedKey | None
    scores: ScoreService
    sessions: SessionService
    exporter: TraceExporter
    prompts: PromptService
    ingest: IngestService
    trace_settings: TraceSettingsService
    retention: RetentionJob
    loop: asyncio.AbstractEventLoop | None = None  # the serving loop, set at start-up
    # --- human review / calibration / online evaluation (evals/review.py, calibration.py, online.py) ---
    review: ReviewService | None = None
    calibration: CalibrationService | None = None
    online_rules: OnlineRuleService | None = None
    online_worker: OnlineWorker | None = None
    # --- end review ---
    rag: RagService | None = None  # RAG core (attach_rag)
    rag_health: HealthService | None = None  # RAG corpus health (attach_rag_health)
    nli: NliModel | None = None  # ONE local NLI model, shared by the scorers and corpus health (shared_nli)
    router: Router | None = None  # load balancing: deployment health (GET /api/gateway/deployments)
    costs: CostService | None = None  # cost reports (attach_costs)
    cache: ResponseCache | None = None  # response caches (build_cache / attach_cache)
    limits: GatewayLimits | None = None  # budgets + rate limits (build_limits)
    files: FileService | None = None  # batches (attach_batches)
    batches: BatchService | None = None  # batches (attach_batches)
    datasets: Any = None  # evals: DatasetService (attach_evals, before attach_review: corrections -> items)
    experiments: Any = None  # evals: ExperimentService (attach_evals)


def build_services(settings: Settings, *, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.resolved_database_url())
    upgrade(engine)
    projects = ProjectService(SqlProjectStore(engine), clock=clock)
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    bootstrap_key = projects.bootstrap(admin_secret=admin)
    trace_store = SqlTraceStore(engine)
    trace_settings = TraceSettingsService(
        SqlTraceSettingsStore(engine), default_retention_days=settings.tracing.retention_days, clock=clock
    )
    writer = RedactingWriter(trace_store, trace_settings)  # every span write (recorder, ingest) is redacted
    recorder = SpanRecorder(
        writer,
        queue_size=settings.tracing.queue_size,
        batch_size=settings.tracing.batch_size,
        flush_interval_ms=settings.tracing.flush_interval_ms,
    )
    config = load_gateway_config(settings.config)
    http = create_http_client()
    embedder = OnnxEmbedder(threads=settings.local.embed_threads)
    factory = ProviderFactory(http, settings.local, embedder)
    router = Router(build_routes(config, factory, settings.gateway), config.router, models=config.models)
    prompts = PromptService(SqlPromptStore(engine), settings.prompts, clock=clock)
    if settings.evals.promotion_gates:  # evals core: promotion gate on prompt label moves
        from llmops.evals.gate import PromotionGate

        prompts.label_gate = PromotionGate(engine, dict(settings.evals.promotion_gates))
    cache = build_cache(settings, engine, config, embedder, clock)  # response caches
    limits = build_limits(settings, engine, config, projects, clock)  # budgets + rate limits
    gateway = GatewayService(
        router,
        recorder,
        PriceTable(config.prices),
        settings.gateway,
        clock=clock,
        model_info={m.name: m.description for m in config.models},
        prompts=prompts,
        cache=cache,  # response caches
        limits=limits,  # budgets + rate limits
    )
    traces = TraceService(trace_store)
    score_store, session_store = SqlScoreStore(engine), SqlSessionStore(engine)
    svc = Services(
        settings,
        engine,
        projects,
        traces,
        recorder,
        gateway,
        embedder,
        factory,
        http,
        bootstrap_key,
        scores=ScoreService(score_store, clock=clock, pending_writes=recorder.flush),
        sessions=SessionService(session_store, score_store),
        exporter=TraceExporter(traces, session_store, score_store),
        prompts=prompts,
        ingest=IngestService(
            trace_store,
            redaction=lambda project_id: trace_settings.settings_sync(project_id).redaction,
            workers=settings.tracing.ingest_workers,
            pin_workers=settings.tracing.pin_ingest_workers,
            worker_store=functools.partial(SqlTraceStore.at, settings.resolved_database_url()),
            lock_path=str(settings.home / "ingest.lock"),
            max_body_bytes=settings.tracing.max_ingest_bytes,
            max_value_chars=settings.tracing.max_attribute_chars,
        ),
        trace_settings=trace_settings,
        retention=RetentionJob(
            trace_store,
            trace_settings,
            lambda: [p.project_id for p in projects.list_projects()],
            interval_s=settings.tracing.retention_interval_s,
            clock=clock,
        ),
    )
    attach_costs(svc, router, PriceTable(config.prices))  # load balancing / cost reports
    attach_cache(svc, cache)  # response caches
    svc.limits = limits  # budgets + rate limits
    attach_batches(svc)  # batches
    return svc


# --- batches (gateway/files.py, gateway/batches.py) -----------------------------------------------------------------
def attach_batches(svc: Services) -> None:
    """Files under LLMOPS_HOME/files, batch jobs run through the gateway service (started in the lifespan)."""
    from llmops.gateway._batches_sql import SqlBatchStore

    store, cfg = SqlBatchStore(svc.engine), svc.settings.batch
    svc.files = FileService(store, svc.settings.home / "files", max_bytes=cfg.max_file_bytes, max_lines=cfg.max_lines)
    svc.batches = BatchService(
        store, svc.files, svc.gateway, concurrency=cfg.concurrency, yield_max_s=cfg.yield_max_s, lease_s=cfg.lease_s
    )


# --- end batches ----------------------------------------------------------------------------------------------------


# --- budgets + rate limits (gateway/budgets.py, gateway/ratelimits.py) -------------------------------------------
def build_limits(
    settings: Settings, engine: Engine, config: GatewayConfig, projects: ProjectService, clock: Clock
) -> GatewayLimits | None:
    """Counters in this process (settled spend in the database) or, with LLMOPS_REDIS_URL, in Redis (shared by
    every replica). None when LLMOPS_LIMITS_ENABLED=false."""
    if not settings.limits.enabled:
        return None
    from llmops.gateway._limits_sql import SqlLimitsStore
    from llmops.gateway.budgets import BudgetService, Counters, MemoryCounters
    from llmops.gateway.ratelimits import MemoryWindows, RateLimitService, Windows, deployment_costs

    store = SqlLimitsStore(engine)
    counters: Counters
    windows: Windows
    joint = None
    if settings.redis_url:
        from llmops.gateway._limits_redis import RedisCounters, RedisJoint, RedisWindows

        redis_counters = RedisCounters(settings.redis_url, store, clock=clock)
        counters, windows, joint = redis_counters, RedisWindows(settings.redis_url), RedisJoint(redis_counters)
    else:
        counters, windows = MemoryCounters(store), MemoryWindows()

    def key_exists(project_id: str, key_id: str) -> bool:
        return any(k.key_id == key_id and k.project_id == project_id for k in projects.list_keys())

    ttl = settings.limits.config_ttl_s
    return GatewayLimits(
        BudgetService(store, counters, clock=clock, config_ttl_s=ttl, key_exists=key_exists),
        RateLimitService(store, windows, clock=clock, config_ttl_s=ttl, key_exists=key_exists),
        PriceTable(config.prices),
        deployment_costs(config),
        default_context_tokens=settings.limits.default_context_tokens,
        unknown_price_reserve_usd=settings.limits.unknown_price_reserve_usd,
        joint=joint,
    )


# --- end budgets + rate limits ------------------------------------------------------------------------------------


# --- response caches (gateway/cache.py, gateway/semantic_cache.py) ------------------------------------------------
def build_cache(
    settings: Settings, engine: Engine, config: GatewayConfig, embedder: OnnxEmbedder, clock: Clock
) -> ResponseCache:
    """Exact cache in the database, or in Redis with LLMOPS_REDIS_URL; semantic cache (database + in-process index)
    when a route enables it. Routes without a ``cache:`` section cache nothing unless a request asks."""
    from llmops.gateway._cache_sql import SqlExactCacheStore, SqlSemanticCacheStore
    from llmops.gateway.cache import ExactCacheStore, MemoryFront

    store: ExactCacheStore
    if settings.redis_url:
        from llmops.gateway._cache_redis import RedisExactCacheStore

        store = RedisExactCacheStore(settings.redis_url)
    elif engine.dialect.name == "sqlite":  # this process is the one writer: recent entries served from memory
        store = MemoryFront(SqlExactCacheStore(engine))
    else:
        store = SqlExactCacheStore(engine)
    routes = {m.name: m.cache for m in config.models}
    semantic = None
    if any(c.semantic.enabled for c in routes.values()):
        from llmops.gateway.semantic_cache import SemanticCache

        semantic = SemanticCache(SqlSemanticCacheStore(engine), lambda texts: embedder.embed(texts)[0])
    return ResponseCache(store, routes, semantic=semantic, clock=clock)


def attach_cache(svc: Services, cache: ResponseCache) -> None:
    """Keep the cache on ``svc``; routes with ``semantic.nli`` use the process's one NLI model."""
    svc.cache = cache
    if cache.semantic is not None and cache.wants_nli:
        cache.semantic.use_contradiction(lambda pairs: shared_nli(svc).contradiction(pairs))


# --- end response caches ------------------------------------------------------------------------------------------


# --- load balancing / cost reports (gateway/balancing.py, tracing/costs.py) ----------------------------------------
def attach_costs(svc: Services, router: Router, prices: PriceTable) -> None:
    """Deployment health and cost reports; what-if prices come from the gateway's price table."""
    svc.router = router
    svc.costs = CostService(SqlCostStore(svc.engine), price_of=what_if_prices(prices, router))


def what_if_prices(prices: PriceTable, router: Router) -> PriceLookup:
    """A model's unit price: an alias is priced by its deployments (first priced one), any other name by the
    price table (OpenAI, Anthropic, then any provider)."""

    def price_of(model: str) -> ModelPrice | None:
        if model in router.aliases:
            candidates = [(d.kind, d.upstream_model) for d in router.deployments(model)]
        else:
            candidates = [("openai", model), ("anthropic", model), ("other", model)]
        for kind, name in candidates:
            per_in = prices.cost(provider_kind=kind, model=name, input_tokens=1_000_000, output_tokens=0)
            per_out = prices.cost(provider_kind=kind, model=name, input_tokens=0, output_tokens=1_000_000)
            if per_in is not None and per_out is not None:
                return ModelPrice(per_in, per_out)
        return None

    return price_of


# --- end load balancing / cost reports ------------------------------------------------------------------------------


# --- human review / calibration / online evaluation -------------------------------------------------------------
def evaluator_factory(svc: Services) -> EvaluatorFactory | None:
    """Scorer specs -> evaluators, through the evaluator registry (None while it is not installed)."""
    try:
        registry = importlib.import_module("llmops.evals.evaluators.registry")
    except ImportError:
        return None
    deps_by_project: dict[str, Any] = {}

    def create(spec: Any, project_id: str) -> Any:
        if project_id not in deps_by_project:  # judges' calls are recorded in the rule's project
            who = Principal(project_id, ONLINE_KEY_ID, "online-eval", is_admin=False)
            deps_by_project[project_id] = registry.EvaluatorDeps(
                gateway=svc.gateway,
                principal=who,
                embedder=svc.embedder,
                nli=shared_nli(svc),  # RAG corpus health: the same NLI model instance as corpus health
                judge_model=svc.settings.scorers.judge_model,  # scorers settings
                threads=svc.settings.scorers.threads,
            )
        return registry.create_evaluator(spec, deps_by_project[project_id])

    return create


def attach_review(svc: Services) -> None:
    """Build the review, calibration and online-evaluation services on ``svc`` (idempotent)."""
    if svc.review is not None:
        return
    store, online = SqlReviewStore(svc.engine), svc.settings.online_eval
    datasets = getattr(svc, "datasets", None)  # the evals core's DatasetService, when it exists
    svc.review = ReviewService(store, svc.traces, svc.scores, datasets=datasets, pending_writes=svc.recorder.flush)
    svc.calibration = CalibrationService(svc.review, svc.scores)
    factory = evaluator_factory(svc)
    svc.online_rules = OnlineRuleService(store, evaluators=factory)
    svc.online_worker = OnlineWorker(
        store,
        svc.traces,
        svc.scores,
        factory,
        queue_size=online.queue_size,
        poll_interval_s=online.poll_interval_s,
        max_traces_per_poll=online.max_traces_per_poll,
        score_timeout_s=online.score_timeout_s,
    )


# --- end review ---------------------------------------------------------------------------------------------------


# --- evals: datasets + experiments (evals/datasets.py, experiments.py, targets.py, http.py) ------------------------
def attach_evals(svc: Services) -> None:
    """Datasets and experiments on ``svc`` (idempotent). Experiments call prompt/model targets through the
    gateway as the caller (traced, costed) and HTTP targets through the shared HTTP client."""
    if svc.experiments is not None:
        return
    from llmops.evals.datasets import DatasetService
    from llmops.evals.experiments import ExperimentService
    from llmops.evals.targets import GatewayTargets, build_target

    svc.datasets = DatasetService(svc.engine)
    factory = evaluator_factory(svc)

    def scorers(spec: Any, project_id: str) -> Any:
        if factory is None:
            raise InvalidInputError("the evaluator registry is not installed", param="scorers")
        return factory(spec, project_id)

    def targets(spec: Any, principal: Principal, run_id: str) -> Any:
        return build_target(spec, chat=GatewayTargets(svc.gateway, principal, run_id), http=svc.http)

    svc.experiments = ExperimentService(svc.engine, svc.datasets, scorers=scorers, targets=targets)
    svc.experiments.recover()


# --- end evals ----------------------------------------------------------------------------------------------------


# --- RAG core -----------------------------------------------------------------------------------------------------
def attach_rag(svc: Services) -> None:
    """Build the RAG service on ``svc`` and let the gateway retrieve through it (idempotent). Corpus health
    hooks in by setting ``svc.rag.on_documents_changed``."""
    if svc.rag is not None:
        return
    svc.rag = RagService(SqlRagStore(svc.engine), svc.embedder, svc.settings.rag, recorder=svc.recorder)
    svc.gateway.use_retriever(RagRetriever(svc.rag), max_chars=svc.settings.rag.max_context_chars)
    threading.Thread(target=_warm_rag, args=(svc.rag,), name="llmops-rag-warm", daemon=True).start()


def _warm_rag(rag: RagService) -> None:
    """Rebuild the in-process vector indexes from the stored embeddings (thread boundary: log, never raise)."""
    try:
        rag.warm_indexes()
    except Exception:  # a missing table or a closed engine at shutdown must not kill the process
        log.warning("RAG index warm-up failed; indexes will be built on first search", exc_info=True)


# --- end RAG core -------------------------------------------------------------------------------------------------


# --- RAG corpus health --------------------------------------------------------------------------------------------
def shared_nli(svc: Services) -> NliModel:
    """The process's one NLI model (loaded lazily on first use) for the scorers and corpus health."""
    if svc.nli is None:
        svc.nli = NliModel(threads=svc.settings.scorers.threads)
    return svc.nli


def attach_rag_health(svc: Services) -> None:
    """Corpus health over the RAG store; after every ingest the changed documents are queued for the background
    check (started in the lifespan), which reads negative feedback from the trace store (idempotent)."""
    if svc.rag_health is not None or svc.rag is None:
        return
    hs = svc.settings.rag_health
    rag = svc.rag
    adjudicator = GatewayAdjudicator(svc.gateway, hs.adjudicator_model) if hs.adjudicator_model else None
    svc.rag_health = HealthService(
        rag.reader,
        SqlFindingStore(svc.engine),
        hs,
        embed=lambda texts: svc.embedder.embed(texts)[0],
        nli=shared_nli(svc) if hs.use_nli else None,
        adjudicator=adjudicator,
        feedback=SqlFeedbackSource(svc.engine),
        find_collection=rag.store.find_collection,
    )
    rag.on_documents_changed = svc.rag_health.on_documents_changed


# --- end RAG corpus health ----------------------------------------------------------------------------------------


def build_project_service(settings: Settings) -> ProjectService:
    """Projects and keys only (the CLI's `keys` commands): migrates, never loads models."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.resolved_database_url())
    upgrade(engine)
    service = ProjectService(SqlProjectStore(engine))
    created = service.bootstrap(admin_secret=settings.admin_key.get_secret_value() if settings.admin_key else None)
    if created is not None:
        save_bootstrap_key(settings.home, created)
    return service


def build_key_limits(settings: Settings) -> RateLimitService:
    """Per-key rate limits in the local store (the CLI's `keys create --rpm/--tpm`); servers read them from there."""
    from llmops.gateway._limits_sql import SqlLimitsStore
    from llmops.gateway.ratelimits import MemoryWindows

    return RateLimitService(SqlLimitsStore(create_db_engine(settings.resolved_database_url())), MemoryWindows())


def save_bootstrap_key(home: Path, created: CreatedKey) -> Path:
    """Keep the first admin key for the local operator (mode 0600), so `make serve` can show it again."""
    path = home / "admin_key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(created.secret + "\n")
    return path


def release_framework_caches() -> None:
    """Forget FastAPI's module-level caches of endpoint callables on shutdown: they keep every app built in the
    process (and its models, ~300 MB each) alive, which OOM-kills long test runs that start many servers."""
    from fastapi.dependencies import models as fastapi_models  # private API: guarded, absent in other versions

    for name in ("_is_gen_callable_cached", "_is_async_gen_callable_cached", "_is_coroutine_callable_cached"):
        cached = getattr(fastapi_models, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


def error_response(exc: LlmopsError) -> Response:
    status, headers, body = error_envelope(exc)
    return json_response(body, headers, status_code=status)


class AuthenticateFirst:
    """``/api/*`` and ``/v1/*`` answer 401 before anything else reads the request: no route can leak by
    validating a body (400) or a path before its handler authenticates. Handlers still authenticate (the
    principal they need comes from the same in-memory key cache, so the second look costs a dict lookup).
    The gateway's fast path sits outside this middleware and authenticates on its own first."""

    OPEN = frozenset({"/api/docs", "/v1/traces"})  # OTLP ingest answers 401 itself, as a google.rpc.Status

    def __init__(self, app: Any, projects: ProjectService) -> None:
        self.app = app
        self._projects = projects

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(("/api/", "/v1/")) and path not in self.OPEN:
            conn = HTTPConnection(scope)
            try:
                await self._projects.authenticate(bearer_token(conn.headers) or conn.cookies.get("llmops_key"))
            except LlmopsError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LlmopsError)
    async def _llmops(_: Request, exc: LlmopsError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path"))
        return error_response(
            InvalidInputError(f"invalid {loc}: {err['msg']}", param=loc or None, code="invalid_value")
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith(("/v1", "/api")):
            from llmops.web import not_found_page

            return not_found_page(request)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": code}}
        return json_response(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # process boundary
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "error": {
                "message": "internal server error",
                "type": "server_error",
                "param": None,
                "code": "internal_error",
            }
        }
        return json_response(body, status_code=500)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    svc = services or build_services(settings)
    attach_evals(svc)  # evals: datasets + experiments (before review: corrections -> dataset items)
    attach_review(svc)  # review / online evals
    attach_rag(svc)  # RAG core
    attach_rag_health(svc)  # RAG corpus health
    checkpointer = WalCheckpointer(svc.engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.loop = asyncio.get_running_loop()
        checkpointer.start()
        svc.recorder.start()
        svc.ingest.start()  # the OTLP ingest worker process, in the background
        svc.retention.start()
        if svc.online_worker is not None and svc.settings.online_eval.enabled:  # review / online evals
            svc.online_worker.start()
        if svc.rag_health is not None and svc.rag_health.background is not None:  # RAG corpus health
            svc.rag_health.background.start()
        if svc.batches is not None:  # batches: resume what a previous process left running
            await svc.batches.start()
        for provider in svc.factory.providers:
            warm = getattr(provider, "warm_up", None)
            if warm is not None:
                warm()
        # Everything built at start-up (models' Python objects, tables, routes: ~200k objects) lives as long as the
        # process; frozen, the cyclic collector stops traversing it on every full collection, which took
        # 20-180 ms and set the gateway's p99 (docs/benchmarks.md, issue 2). Unfrozen at shutdown: a frozen object
        # that dies is never collected, and a process that builds many apps (the test suite) would keep them all.
        gc.collect()
        gc.freeze()
        # Background threads (span writer, database calls) hand the GIL back to the event loop after 1 ms instead
        # of Python's default 5 ms: a request arriving mid-batch waits less (the gateway's p99, issue 2).
        sys.setswitchinterval(0.001)
        try:
            yield
        finally:
            if svc.batches is not None:  # batches: lines in flight run again on the next start
                await svc.batches.stop()
            if svc.experiments is not None:  # evals: running experiments resume on demand after a restart
                await svc.experiments.aclose()
            if svc.online_worker is not None:  # review / online evals
                await svc.online_worker.stop()
            if svc.rag_health is not None and svc.rag_health.background is not None:  # RAG corpus health
                await svc.rag_health.background.stop()
            await svc.retention.stop()
            await svc.recorder.stop()
            svc.ingest.close()
            for provider in svc.factory.providers:
                await provider.aclose()
            await svc.http.aclose()
            if svc.cache is not None:  # response caches
                await svc.cache.aclose()
            if svc.limits is not None:  # budgets + rate limits: settle what is pending, write spend behind
                await svc.limits.aclose()
            checkpointer.stop()
            svc.engine.dispose()
            release_framework_caches()
            gc.unfreeze()  # what start-up froze is collectable again (a process that builds many apps: tests)

    app = FastAPI(
        title="llmops",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # FastAPI's own OpenTelemetry instrumentation checks the global providers on every request (~20 µs);
        # the gateway records its calls itself, and the server is not meant to export its own HTTP telemetry
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = svc

    async def authenticate(request: Request) -> Principal:
        return await svc.projects.authenticate(bearer_token(request.headers) or request.cookies.get("llmops_key"))

    app.include_router(create_gateway_router(svc.gateway, svc.projects))
    app.add_middleware(AuthenticateFirst, projects=svc.projects)  # added before the fast path: runs inside it
    app.add_middleware(
        GatewayFastPath, service=svc.gateway, projects=svc.projects, max_body_bytes=settings.gateway.max_body_bytes
    )
    if svc.batches is not None and svc.files is not None:  # batches: routes, and live traffic they yield to
        app.add_middleware(LiveTrafficMeter, live=svc.batches.live)  # outermost: counts every live gateway call
        app.include_router(
            create_batch_router(svc.files, svc.batches, svc.projects, max_file_bytes=settings.batch.max_file_bytes)
        )
    app.include_router(create_feedback_router(svc.scores, svc.sessions, svc.exporter, authenticate))  # before traces
    app.include_router(create_tracing_router(svc.traces, authenticate, scores=svc.scores))
    key_limits = svc.limits.rates if svc.limits is not None else None  # rpm/tpm at key creation
    app.include_router(create_projects_router(svc.projects, authenticate, key_limits=key_limits))
    app.include_router(create_prompts_router(svc.prompts, authenticate))
    if svc.cache is not None:  # response caches
        app.include_router(create_cache_router(svc.cache, authenticate))
    assert svc.rag is not None  # RAG core
    app.include_router(create_rag_router(svc.rag, authenticate))  # RAG core
    assert svc.rag_health is not None  # RAG corpus health
    app.include_router(create_health_router(svc.rag_health, authenticate))  # RAG corpus health
    assert svc.review is not None and svc.calibration is not None  # review / online evals
    assert svc.online_rules is not None and svc.online_worker is not None
    app.include_router(create_review_router(svc.review, svc.calibration, authenticate))
    app.include_router(create_online_router(svc.online_rules, svc.online_worker, authenticate))
    from llmops.evals.http import create_datasets_router, create_experiments_router  # evals

    app.include_router(create_datasets_router(svc.datasets, svc.traces, authenticate))  # evals
    app.include_router(create_experiments_router(svc.experiments, authenticate))  # evals

    async def authenticate_header(request: Request) -> Principal:  # OTLP senders: a key header, never a cookie
        return await svc.projects.authenticate(bearer_token(request.headers))

    app.include_router(create_ingest_router(svc.ingest, authenticate_header))
    app.include_router(create_settings_router(svc.trace_settings, authenticate))
    assert svc.router is not None and svc.costs is not None  # load balancing / cost reports
    app.include_router(create_balancing_router(svc.router, authenticate))
    app.include_router(create_costs_router(svc.costs, authenticate))
    if svc.limits is not None:  # budgets + rate limits
        app.include_router(create_limits_router(svc.limits.budgets, svc.limits.rates, authenticate))

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], summary="Readiness, with the span writer's counters")
    async def readyz() -> dict[str, Any]:
        stats = svc.recorder.stats
        return {
            "status": "ok",
            "spans": {
                "recorded": stats.recorded,
                "written": stats.written,
                "dropped": stats.dropped,
                "failed_batches": stats.failed_batches,
                "catch_up_batches": stats.catch_up_batches,
            },
            "ingest": asdict(svc.ingest.stats),
            "retention": asdict(svc.retention.stats),
            "online_eval": svc.online_worker.health() if svc.online_worker else None,  # review / online evals
        }

    from llmops.web import mount_web

    mount_web(app, svc, authenticate)
    from llmops.web.budget_pages import budget_router  # the Budgets page

    app.include_router(budget_router(app.state.web))
    _install_error_handlers(app)
    return app
