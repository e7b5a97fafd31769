"""Routing: a model alias maps to deployments, tried in the order the balancer picks (``strategy:``, cooldown:
see ``gateway.balancing``); retries and fallbacks happen only before the first byte reaches the client.

Decision per failed attempt (``classify``):
- 429, 5xx, timeout, connection error → retry the same deployment (``retries`` times, backoff, honouring
  ``Retry-After`` up to ``max_retry_after_s``), then fall back to the next deployment;
- context-window error → fall back at once (a retry would fail the same way);
- any other 4xx → the client's request is wrong: fail at once with the upstream's status and message.
Every failed attempt is kept (``Attempt``) for the trace and the final error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from llmops.core.errors import (
    Attempt,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    UpstreamError,
    UpstreamTimeoutError,
)
from llmops.gateway.balancing import Balancer
from llmops.gateway.config import ModelConfig, RouterConfig

T = TypeVar("T")
LOCAL_LIMIT_CODE = "deployment_rate_limited"  # gateway.ratelimits: a deployment at its configured rpm/tpm
Decision = Literal["retry", "fallback", "fail"]


@dataclass(frozen=True)
class Deployment:
    name: str
    alias: str
    kind: str  # provider kind from config: local, local-embed, openai, anthropic
    upstream_model: str
    provider: Any  # ChatProvider and/or EmbeddingProvider
    timeout_s: float
    retries: int
    server_address: str | None = None

    @property
    def provider_name(self) -> str:
        return str(self.provider.provider_name)


@dataclass
class Routed(Generic[T]):
    value: T
    deployment: Deployment
    attempts: list[Attempt]


def classify(exc: UpstreamError) -> Decision:
    if exc.code == "context_length_exceeded":
        return "fallback"
    status = exc.upstream_status
    if status is None or status == 429 or status >= 500 or status in (408, 409):
        return "retry"
    return "fail"


class Router:
    def __init__(
        self,
        routes: dict[str, list[Deployment]],
        config: RouterConfig,
        *,
        models: Sequence[ModelConfig] = (),
        balancer: Balancer | None = None,
    ) -> None:
        self._routes = routes
        self._config = config
        self.balancer = balancer or Balancer(config, models)  # strategies and cooldown (gateway/balancing.py)
        self.balancer.register(routes)

    def health(self) -> list[dict[str, Any]]:
        """Each alias's strategy and its deployments' health (GET /api/gateway/deployments)."""
        return self.balancer.snapshot(self._routes)

    @property
    def aliases(self) -> list[str]:
        return list(self._routes)

    def deployments(self, alias: str) -> list[Deployment]:
        try:
            return self._routes[alias]
        except KeyError:
            raise NotFoundError(
                f"The model {alias!r} does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            ) from None

    async def run(self, alias: str, call: Callable[[Deployment], Awaitable[T]], *, hold: bool = False) -> Routed[T]:
        """Try the alias's deployments in the balancer's order. ``hold``: the winning deployment stays in flight
        until the caller releases it (a stream, until it ends)."""
        attempts: list[Attempt] = []
        last: UpstreamError | None = None
        balancer = self.balancer
        for dep in balancer.order(alias, self.deployments(alias)):
            for try_no in range(dep.retries + 1):
                started = time.perf_counter()
                balancer.acquire(dep)
                try:
                    if getattr(dep.provider, "enforces_timeout", False):
                        value = await call(dep)  # the HTTP client bounds connect, each read and the total
                    else:
                        async with asyncio.timeout(dep.timeout_s):
                            value = await call(dep)
                except TimeoutError:
                    last = UpstreamTimeoutError(
                        f"deployment {dep.name!r} timed out after {dep.timeout_s}s", provider=dep.provider_name
                    )
                except UpstreamError as exc:
                    last = exc
                except BaseException:
                    balancer.release(dep)  # cancelled (client gone) or a bug: no health signal either way
                    raise
                else:
                    balancer.success(dep, (time.perf_counter() - started) * 1000, release=not hold)
                    return Routed(value, dep, attempts)
                attempts.append(_attempt(dep, last, started))
                decision = classify(last)
                # the client's own 4xx and our own per-deployment rate limit say nothing about the upstream's health
                balancer.failure(dep, last, counts=decision != "fail" and last.code != LOCAL_LIMIT_CODE)
                if decision == "fail":
                    raise _final(last, attempts, client_error=True)
                if decision == "fallback" or balancer.cooling(dep):
                    break
                wait = self._backoff(last, try_no)
                if wait is None or try_no == dep.retries:
                    break
                await asyncio.sleep(wait)
        assert last is not None
        raise _final(last, attempts, client_error=False)

    def _backoff(self, exc: UpstreamError, try_no: int) -> float | None:
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self._config.max_retry_after_s else None
        return self._config.backoff_ms / 1000 * (2**try_no)

    async def stream(
        self, alias: str, open_stream: Callable[[Deployment], AsyncIterator[dict[str, Any]]]
    ) -> Routed[tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]]:
        """Open a stream on the first deployment that yields a first chunk."""

        async def first_chunk(dep: Deployment) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
            stream = open_stream(dep)
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                raise UpstreamError(
                    f"deployment {dep.name!r} sent an empty stream", provider=dep.provider_name
                ) from None
            except BaseException:
                await _aclose(stream)
                raise
            return first, stream

        routed = await self.run(alias, first_chunk, hold=True)
        first, stream = routed.value
        held = _Held(stream, lambda: self.balancer.release(routed.deployment))  # in flight until the stream ends
        return Routed((first, held), routed.deployment, routed.attempts)


class _Held:
    """An upstream stream that releases its deployment's in-flight slot once, when exhausted or closed."""

    def __init__(self, stream: AsyncIterator[dict[str, Any]], release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await anext(self._stream)
        except BaseException:
            self._done()
            raise

    def _done(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release()

    async def aclose(self) -> None:
        self._done()
        await _aclose(self._stream)


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def _attempt(dep: Deployment, exc: UpstreamError, started: float) -> Attempt:
    return Attempt(
        deployment=dep.name,
        provider=dep.provider_name,
        error=f"{type(exc).__name__}: {exc.message}",
        status_code=exc.upstream_status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _final(exc: UpstreamError, attempts: list[Attempt], *, client_error: bool) -> Exception:
    """The error the client sees: the upstream's own 4xx, 429 with Retry-After, 504 or 502."""
    if client_error and exc.upstream_status is not None:
        err = InvalidInputError(exc.message, code=exc.code)
        err.status_code = exc.upstream_status
        err.attempts = attempts  # type: ignore[attr-defined]
        return err
    if exc.upstream_status == 429:
        rl = RateLimitedError(
            f"all deployments are rate limited: {exc.message}",
            retry_after=exc.retry_after,
            code="upstream_rate_limited",
        )
        rl.attempts = attempts  # type: ignore[attr-defined]
        return rl
    cls = UpstreamTimeoutError if isinstance(exc, UpstreamTimeoutError) else UpstreamError
    n = len(attempts)
    return cls(
        f"all {n} attempt(s) failed; last: {exc.message}",
        provider=exc.provider,
        upstream_status=exc.upstream_status,
        attempts=attempts,
        code=exc.code,
    )
