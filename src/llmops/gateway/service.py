"""Gateway use cases: chat completions (plain and streamed), embeddings, model list.

Every call, successful or not, is recorded as one span through the non-blocking recorder. A stream
that breaks after its first byte ends with an SSE ``error`` event and no ``[DONE]``: never a fake finish.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import orjson

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import Attempt, InvalidInputError, LlmopsError, UpstreamError
from llmops.core.settings import GatewaySettings
from llmops.gateway.cache import CachePlan, ResponseCache, completion_from_stream, replay_chunks
from llmops.gateway.pricing import PriceTable
from llmops.gateway.prompting import apply_prompt, wants_prompt
from llmops.gateway.ratelimits import GatewayLimits  # budgets + rate limits
from llmops.gateway.recording import (
    CallContext,
    CallOutcome,
    apply_usage,
    build_span,
    input_messages,
    output_message,
)
from llmops.gateway.retrieval import Retriever, apply_rag, wants_rag
from llmops.gateway.routing import Deployment, Router
from llmops.gateway.schemas import ChatCompletionRequest, EmbeddingRequest, parse
from llmops.prompts import PromptService
from llmops.tracing import SpanRecorder

DONE = b"data: [DONE]\n\n"
T = TypeVar("T")  # budgets + rate limits: _gated
log = logging.getLogger("llmops.gateway")


@dataclass
class Reply:
    body: dict[str, Any]
    headers: dict[str, str]
    cost_usd: float | None = None  # as recorded on the span (None: no price known)


@dataclass
class StreamReply:
    headers: dict[str, str]
    events: AsyncIterator[bytes]


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def error_event(exc: LlmopsError) -> bytes:
    return sse({"error": {"message": exc.message, "type": exc.error_type, "param": exc.param, "code": exc.code}})


class GatewayService:
    def __init__(
        self,
        router: Router,
        recorder: SpanRecorder,
        prices: PriceTable,
        settings: GatewaySettings,
        *,
        clock: Clock | None = None,
        model_info: dict[str, str | None] | None = None,
        prompts: PromptService | None = None,
        retriever: Retriever | None = None,
        rag_max_chars: int = 12_000,
        cache: ResponseCache | None = None,
        limits: GatewayLimits | None = None,
    ) -> None:
        self._limits = limits  # budgets + rate limits (gateway/budgets.py, ratelimits.py); None: unlimited
        self._cache = cache  # response caches (gateway/cache.py); None: no caching at all
        self._prompts = prompts
        self._retriever = retriever  # RAG context injection (wired by app.py; see gateway.retrieval)
        self._rag_max_chars = rag_max_chars
        self._router = router
        self._recorder = recorder
        self._prices = prices
        self._settings = settings
        self._clock = clock or SystemClock()
        self._model_info = model_info or {}

    def use_retriever(self, retriever: Retriever, *, max_chars: int) -> None:
        """Enable RAG context injection (called by the composition root)."""
        self._retriever, self._rag_max_chars = retriever, max_chars

    def list_models(self) -> list[dict[str, Any]]:
        return [
            {
                "id": alias,
                "object": "model",
                "created": 0,
                "owned_by": "llmops",
                "description": self._model_info.get(alias),
            }
            for alias in self._router.aliases
        ]

    def get_model(self, alias: str) -> dict[str, Any]:
        self._router.deployments(alias)
        return next(m for m in self.list_models() if m["id"] == alias)

    def _headers(self, ctx: CallContext, dep: Deployment | None, attempts: list[Attempt]) -> dict[str, str]:
        h = {
            "x-request-id": ctx.request_id,
            "x-llmops-trace-id": ctx.trace_id,
            "x-llmops-attempts": str(len(attempts) + 1),
        }
        if dep is not None:
            h["x-llmops-deployment"] = dep.name
        if ctx.admission is not None:  # budgets + rate limits: x-ratelimit-*, x-llmops-budget-warning
            h.update(ctx.admission.headers)
        return h

    def _record(
        self,
        ctx: CallContext,
        op: str,
        alias: str,
        body: dict[str, Any],
        dep: Deployment | None,
        attempts: list[Attempt],
        outcome: CallOutcome,
        content: Any,
    ) -> None:
        if dep is not None and outcome.input_tokens is not None:
            outcome.cost_usd = self._prices.cost(
                provider_kind=dep.kind,
                model=dep.upstream_model,
                input_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens or 0,
                cached_tokens=outcome.cached_tokens or 0,
            )
        outcome.end_ns = outcome.end_ns or self._clock.now_ns()
        if ctx.admission is not None:  # budgets + rate limits: settle to the real cost, or release (no upstream tokens)
            consumed = dep is not None and (outcome.status == "ok" or outcome.input_tokens is not None)
            tokens = (outcome.input_tokens or 0) + (outcome.output_tokens or 0) if consumed else None
            ctx.admission.finish(cost_usd=outcome.cost_usd, tokens=tokens, consumed=consumed)
        self._recorder.record(
            build_span(
                ctx,
                operation=op,
                alias=alias,
                body=body,
                deployment=dep,
                attempts=attempts,
                outcome=outcome,
                capture=self._settings.capture_content,
                input_content=content,
            )
        )

    def _fail(
        self, ctx: CallContext, op: str, alias: str, body: dict[str, Any], exc: LlmopsError, content: Any
    ) -> None:
        outcome = CallOutcome(status="error", error=exc.message, error_type=exc.code or type(exc).__name__)
        self._record(ctx, op, alias, body, None, list(getattr(exc, "attempts", [])), outcome, content)

    async def chat(self, ctx: CallContext, raw: dict[str, Any]) -> Reply | StreamReply:
        if self._prompts is not None and wants_prompt(raw):
            raw = await self._from_prompt(self._prompts, ctx, raw)
        if wants_rag(ctx, raw):
            raw = await self._with_context(ctx, raw)
        req: ChatCompletionRequest = parse(ChatCompletionRequest, raw)
        limit = self._settings.max_capture_chars
        content = input_messages(raw["messages"], limit) if self._settings.capture_content else None
        await self._admit(ctx, "chat", req.model, raw, content)  # budgets + rate limits: first, before the cache
        # --- response cache (gateway/cache.py): lookup after admission; a hit never calls upstream, costs 0 ---
        plan = None
        if self._cache is not None:
            try:  # a bad x-llmops-cache header is recorded like any refusal (which also releases the reservation)
                plan = self._cache.plan(
                    ctx.principal.project_id, req.model, raw, header=ctx.cache, ttl_header=ctx.cache_ttl,
                    attributes=ctx.attributes,
                )  # fmt: skip
            except LlmopsError as exc:
                self._fail(ctx, "chat", req.model, raw, exc, content)
                raise
            if plan is not None:
                cached = await self._cache.lookup(plan, raw)
                ctx.attributes.update(plan.attributes())
                if cached is not None:
                    return self._cache_hit(ctx, req, raw, plan, cached, content)
        # --- end response cache ---
        if req.stream:
            return await self._chat_stream(ctx, req, raw, content, plan=plan)
        try:
            routed = await self._router.run(
                req.model,
                self._gated(ctx, lambda d: d.provider.chat(raw, model=d.upstream_model, timeout_s=d.timeout_s)),
            )
        except LlmopsError as exc:
            self._fail(ctx, "chat", req.model, raw, exc, content)
            raise
        except BaseException:  # cancelled (client gone): budgets + rate limits give the reservation back
            self._abandon(ctx)
            raise
        resp = routed.value
        outcome = CallOutcome(response_id=resp.get("id"), response_model=resp.get("model"))
        apply_usage(outcome, resp.get("usage"))
        choices = resp.get("choices") or []
        outcome.finish_reasons = [str(c.get("finish_reason")) for c in choices if c.get("finish_reason")]
        outcome.output_messages = [
            output_message(c.get("message") or {}, c.get("finish_reason"), limit) for c in choices
        ]
        self._record(ctx, "chat", req.model, raw, routed.deployment, routed.attempts, outcome, content)
        headers = self._headers(ctx, routed.deployment, routed.attempts)
        if plan is not None:  # response cache: keep the successful reply, say what the cache did
            headers["x-llmops-cache"] = plan.status
            await self._cache_store(plan, raw, resp, outcome.cost_usd)
        return Reply(resp, headers, outcome.cost_usd)

    # --- response cache (gateway/cache.py) ---------------------------------------------------------------------
    def _cache_hit(
        self,
        ctx: CallContext,
        req: ChatCompletionRequest,
        raw: dict[str, Any],
        plan: CachePlan,
        cached: dict[str, Any],
        content: Any,
    ) -> Reply | StreamReply:
        """Serve a stored reply: recorded as a span with its tokens, cost 0 and what it saved."""
        outcome = CallOutcome(response_id=cached.get("id"), response_model=cached.get("model"), cost_usd=0.0)
        apply_usage(outcome, cached.get("usage"))
        choices = cached.get("choices") or []
        outcome.finish_reasons = [str(c.get("finish_reason")) for c in choices if c.get("finish_reason")]
        limit = self._settings.max_capture_chars
        outcome.output_messages = [
            output_message(c.get("message") or {}, c.get("finish_reason"), limit) for c in choices
        ]
        self._record(ctx, "chat", req.model, raw, None, [], outcome, content)
        headers = {**self._headers(ctx, None, []), "x-llmops-cache": plan.status}
        if not req.stream:
            return Reply(cached, headers, 0.0)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamReply(headers, _replay(cached, include_usage))

    async def _cache_store(self, plan: CachePlan, raw: dict[str, Any], reply: dict[str, Any], cost: Any) -> None:
        if self._cache is None or not plan.store:
            return
        try:
            await self._cache.store(plan, raw, reply, cost)
        except Exception:  # a cache write failure must not fail a reply the client already has: log, count on
            log.warning("cache store failed for route %r", plan.alias, exc_info=True)

    # --- end response cache ------------------------------------------------------------------------------------

    # --- budgets + rate limits (gateway/budgets.py, gateway/ratelimits.py) ---------------------------------------
    async def _admit(
        self, ctx: CallContext, op: str, alias: str, raw: dict[str, Any], content: Any, *, embeddings: bool = False
    ) -> None:
        """Rate limits, then the worst-case budget reservation; a refusal is recorded (429) and raised."""
        if self._limits is None or ctx.admission is not None:
            return
        try:
            ctx.admission = await self._limits.admit(ctx, alias, raw, embeddings=embeddings)
        except LlmopsError as exc:
            self._fail(ctx, op, alias, raw, exc, content)
            raise

    def _abandon(self, ctx: CallContext) -> None:
        if ctx.admission is not None:
            ctx.admission.finish(cost_usd=None, tokens=None, consumed=False)

    def _gated(
        self, ctx: CallContext, call: Callable[[Deployment], Awaitable[T]]
    ) -> Callable[[Deployment], Awaitable[T]]:
        """``call`` behind the deployment's own rpm/tpm (at its limit the router falls back to the next one)."""
        limits = self._limits
        if limits is None:
            return call

        async def gated(d: Deployment) -> T:
            await limits.check_deployment(d.name, ctx.admission)
            return await call(d)

        return gated

    def _gated_stream(
        self, ctx: CallContext, open_stream: Callable[[Deployment], AsyncIterator[dict[str, Any]]]
    ) -> Callable[[Deployment], AsyncIterator[dict[str, Any]]]:
        limits = self._limits
        if limits is None:
            return open_stream

        async def gated(d: Deployment) -> AsyncIterator[dict[str, Any]]:
            await limits.check_deployment(d.name, ctx.admission)
            stream = open_stream(d)
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                await _aclose(stream)

        return gated

    # --- end budgets + rate limits ---------------------------------------------------------------------------------

    async def _from_prompt(self, prompts: PromptService, ctx: CallContext, raw: dict[str, Any]) -> dict[str, Any]:
        """The request rendered from its prompt (see ``gateway.prompting``); a failure is recorded too."""
        try:
            return await apply_prompt(prompts, ctx, raw)
        except LlmopsError as exc:
            self._fail(ctx, "chat", str(raw.get("model") or "prompt"), raw, exc, None)
            raise

    async def _with_context(self, ctx: CallContext, raw: dict[str, Any]) -> dict[str, Any]:
        """The request with retrieved context (see ``gateway.retrieval``); a failure is recorded too."""
        try:
            if self._retriever is None:
                raise InvalidInputError("retrieval (x-llmops-rag / llmops.rag) is not enabled", param="llmops.rag")
            return await apply_rag(self._retriever, ctx, raw, max_chars=self._rag_max_chars)
        except LlmopsError as exc:
            self._fail(ctx, "chat", str(raw.get("model") or "rag"), raw, exc, None)
            raise

    async def _chat_stream(
        self,
        ctx: CallContext,
        req: ChatCompletionRequest,
        raw: dict[str, Any],
        content: Any,
        *,
        plan: CachePlan | None = None,  # response cache: store the finished stream
    ) -> StreamReply:
        upstream_body = {**raw, "stream_options": {**(raw.get("stream_options") or {}), "include_usage": True}}
        started = time.perf_counter()
        try:
            routed = await self._router.stream(
                req.model,
                self._gated_stream(
                    ctx, lambda d: d.provider.stream_chat(upstream_body, model=d.upstream_model, timeout_s=d.timeout_s)
                ),
            )
        except LlmopsError as exc:
            self._fail(ctx, "chat", req.model, raw, exc, content)
            raise
        except BaseException:  # cancelled (client gone): budgets + rate limits give the reservation back
            self._abandon(ctx)
            raise
        first, rest = routed.value
        outcome = CallOutcome(ttft_ms=round((time.perf_counter() - started) * 1000, 3))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = self._relay(
            ctx, req.model, raw, routed.deployment, routed.attempts, outcome, content, first, rest, include_usage,
            plan=plan,
        )  # fmt: skip
        headers = self._headers(ctx, routed.deployment, routed.attempts)
        if plan is not None:  # response cache
            headers["x-llmops-cache"] = plan.status
        return StreamReply(headers, events)

    async def _relay(
        self,
        ctx: CallContext,
        alias: str,
        raw: dict[str, Any],
        dep: Deployment,
        attempts: list[Attempt],
        outcome: CallOutcome,
        content: Any,
        first: dict[str, Any],
        rest: AsyncIterator[dict[str, Any]],
        include_usage: bool,
        *,
        plan: CachePlan | None = None,  # response cache: store the stream once it finished OK
    ) -> AsyncIterator[bytes]:
        acc = _StreamAccumulator()
        try:
            chunk: dict[str, Any] | None = first
            while chunk is not None:
                acc.add(chunk)
                if chunk.get("choices") or include_usage:
                    yield sse(chunk)
                chunk = await anext(rest, None)
            yield DONE
        except UpstreamError as exc:
            outcome.status, outcome.error, outcome.error_type = "error", exc.message, exc.code or "upstream_error"
            yield error_event(exc)
        except BaseException as exc:  # client went away (GeneratorExit / cancellation): record, re-raise
            outcome.status, outcome.error = "error", f"stream interrupted: {type(exc).__name__}"
            outcome.error_type = "client_disconnected"
            raise
        finally:
            await _aclose(rest)
            acc.apply_to(outcome, raw, self._settings.max_capture_chars)
            self._record(ctx, "chat", alias, raw, dep, attempts, outcome, content)
            if plan is not None and plan.store and outcome.status == "ok":  # response cache
                await self._cache_store(plan, raw, acc.completion(), outcome.cost_usd)

    async def embeddings(self, ctx: CallContext, raw: dict[str, Any]) -> Reply:
        req: EmbeddingRequest = parse(EmbeddingRequest, raw)
        texts = req.texts()
        await self._admit(ctx, "embeddings", req.model, raw, None, embeddings=True)  # budgets + rate limits
        try:
            routed = await self._router.run(
                req.model,
                self._gated(
                    ctx,
                    lambda d: d.provider.embed(
                        texts, model=d.upstream_model, dimensions=req.dimensions, timeout_s=d.timeout_s
                    ),
                ),
            )
        except LlmopsError as exc:
            self._fail(ctx, "embeddings", req.model, raw, exc, None)
            raise
        except BaseException:  # cancelled: budgets + rate limits give the reservation back
            self._abandon(ctx)
            raise
        vectors, tokens = routed.value
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        outcome = CallOutcome(response_model=req.model, input_tokens=tokens, output_tokens=0)
        self._record(
            ctx, "embeddings", req.model, {"model": req.model}, routed.deployment, routed.attempts, outcome, None
        )
        body = {
            "object": "list",
            "data": data,
            "model": req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(body, self._headers(ctx, routed.deployment, routed.attempts))


async def _replay(reply: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    """A cached completion as SSE (response cache)."""
    for chunk in replay_chunks(reply, include_usage=include_usage):
        yield sse(chunk)
    yield DONE


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: S110 - closing a broken upstream stream may fail again; nothing to do
            pass


class _StreamAccumulator:
    """Collects what a stream said, for the span: text, tool calls, finish reason, usage."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        self.chars = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self.response_id = self.response_id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
                self.chars += len(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(
                    int(tc.get("index", 0)), {"id": None, "function": {"name": None, "arguments": ""}}
                )
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["function"]["name"] = fn.get("name") or slot["function"]["name"]
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def completion(self) -> dict[str, Any]:
        """The completion this stream amounts to (response cache)."""
        return completion_from_stream(
            response_id=self.response_id,
            model=self.model,
            text="".join(self.text),
            tool_calls=[self.tool_calls[i] for i in sorted(self.tool_calls)],
            finish_reason=self.finish_reason,
            usage=self.usage,
        )

    def apply_to(self, outcome: CallOutcome, raw: dict[str, Any], limit: int) -> None:
        outcome.response_id, outcome.response_model = self.response_id, self.model
        if self.finish_reason and outcome.status == "ok":
            outcome.finish_reasons = [self.finish_reason]
        if self.usage:
            apply_usage(outcome, self.usage)
        else:  # upstream sent no usage: estimate (~4 chars a token) and say so
            prompt_chars = sum(len(str(m.get("content") or "")) for m in raw.get("messages", []))
            outcome.input_tokens, outcome.output_tokens = prompt_chars // 4 + 1, self.chars // 4 + 1
            outcome.usage_estimated = True
        message = {
            "content": "".join(self.text) or None,
            "tool_calls": [self.tool_calls[i] for i in sorted(self.tool_calls)] or None,
        }
        outcome.output_messages = [
            output_message(message, outcome.finish_reasons[0] if outcome.finish_reasons else None, limit)
        ]
