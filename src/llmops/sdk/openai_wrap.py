"""``wrap_openai(client)``: trace an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client's calls.

``client.chat.completions.create`` and ``client.embeddings.create`` are replaced *on this client instance*
(the class and other clients are untouched; wrapping twice is a no-op). What a call does depends on where
the client points:

- **At a provider** (OpenAI, vLLM, ...): a CLIENT span per call, ``chat {model}`` / ``embeddings {model}``,
  with the OTel GenAI attributes (operation, provider ``openai``, request parameters, response id and model,
  usage, finish reasons) and, unless content capture is off, ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` in the parts format. Streams (``stream=True``) are returned wrapped: the span
  ends when the stream is exhausted, fails, or is closed (``llmops.closed_early``); chunks pass through
  unchanged (usage is recorded when the caller asked for it with ``stream_options``). Errors are recorded
  (``error.type``, ``http.response.status_code``) and re-raised unchanged.
- **At the llmops gateway** (its base URL starts with ``init``'s ``base_url``, or ``gateway=True``): no SDK
  span (the gateway records the model call, with cost; a second LLM span would count it twice); instead the
  current trace context is sent as ``traceparent`` (plus ``x-llmops-user`` / ``x-llmops-session``) through
  the call's ``extra_headers``, so the gateway's span nests under the application's span.

Why ``extra_headers`` per call: it is evaluated at call time in the caller's context (thread or task), it
works whatever HTTP client the OpenAI client was given (openai 3.x no longer uses httpx), and headers the
caller passes in ``extra_headers`` still win. ``default_headers`` are fixed at construction, so they cannot
carry a per-call parent. For an unwrapped client, pass ``extra_headers=llmops.trace_headers()`` yourself.

Not wrapped: ``with_raw_response`` / ``with_streaming_response`` variants, the Responses API, and the
``.stream()``/``.parse()`` helpers.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from opentelemetry import context

from llmops.sdk import runtime
from llmops.sdk._genai import GenAICall
from llmops.sdk.spans import trace_headers

log = logging.getLogger("llmops.sdk")
C = TypeVar("C")
_RESOURCES = (("chat", "completions", "chat"), ("embeddings", None, "embeddings"))


class _Target:
    """What a wrapped ``create`` needs to know about its client."""

    __slots__ = ("client", "operation", "capture", "gateway")

    def __init__(self, client: Any, operation: str, capture: bool | None, gateway: bool | None) -> None:
        self.client = client
        self.operation = operation
        self.capture = capture
        self.gateway = gateway

    def routes_to_gateway(self, rt: runtime.Runtime) -> bool:
        if self.gateway is not None:
            return self.gateway
        url = str(getattr(self.client, "base_url", "")).rstrip("/")
        return url == rt.base_url or url.startswith(rt.base_url + "/")

    def captures(self, rt: runtime.Runtime) -> bool:
        return rt.capture_content if self.capture is None else self.capture and rt.capture_content

    def start(self, rt: runtime.Runtime, kwargs: dict[str, Any]) -> GenAICall | None:
        """The call's span, or None (logged) when the arguments cannot be read: the call then goes out untraced."""
        try:
            base_url = getattr(self.client, "base_url", None)
            return GenAICall.start(rt, self.operation, kwargs, base_url, self.captures(rt))
        except Exception:  # instrumentation boundary: never fail the caller's call
            log.debug("llmops: could not trace an OpenAI call", exc_info=True)
            return None


def wrap_openai(client: C, *, capture_content: bool | None = None, gateway: bool | None = None) -> C:
    """Trace ``client`` (see the module docstring); returns the same client.

    ``capture_content=False`` keeps messages off this client's spans (``init(capture_content=False)`` keeps
    them off everywhere); ``gateway`` forces (True) or disables (False) the gateway behaviour.
    """
    if getattr(client, "_llmops_wrapped", False):
        return client
    for first, second, operation in _RESOURCES:
        resource = getattr(client, first, None)
        if second is not None:
            resource = getattr(resource, second, None)
        original = getattr(resource, "create", None)
        if resource is None or original is None:
            continue
        target = _Target(client, operation, capture_content, gateway)
        wrap = _async_create if inspect.iscoroutinefunction(inspect.unwrap(original)) else _sync_create
        resource.create = wrap(original, target)
    client._llmops_wrapped = True  # type: ignore[attr-defined]
    return client


def _with_trace_headers(kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        headers = trace_headers()
        if headers:
            kwargs["extra_headers"] = {**headers, **(kwargs.get("extra_headers") or {})}
    except Exception:  # instrumentation boundary: an odd extra_headers value goes out as the caller gave it
        log.debug("llmops: could not add trace headers", exc_info=True)
    return kwargs


def _sync_create(original: Callable[..., Any], target: _Target) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        rt = runtime._runtime
        if rt is None:
            return original(*args, **kwargs)
        if target.routes_to_gateway(rt):
            return original(*args, **_with_trace_headers(kwargs))
        call = target.start(rt, kwargs)
        if call is None:
            return original(*args, **kwargs)
        token = context.attach(call.context)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            context.detach(token)
            call.fail(exc)
            raise
        context.detach(token)
        if kwargs.get("stream") is True:
            return TracedStream(result, call)
        call.finish(result)
        return result

    return create


def _async_create(original: Callable[..., Any], target: _Target) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        rt = runtime._runtime
        if rt is None:
            return await original(*args, **kwargs)
        if target.routes_to_gateway(rt):
            return await original(*args, **_with_trace_headers(kwargs))
        call = target.start(rt, kwargs)
        if call is None:
            return await original(*args, **kwargs)
        token = context.attach(call.context)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            context.detach(token)
            call.fail(exc)
            raise
        context.detach(token)
        if kwargs.get("stream") is True:
            return AsyncTracedStream(result, call)
        call.finish(result)
        return result

    return create


class TracedStream:
    """An ``openai.Stream`` that records its chunks on the call's span; anything else is the stream's."""

    def __init__(self, stream: Any, call: GenAICall) -> None:
        self._stream = stream
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._call.finish_stream()
            raise
        except BaseException as exc:
            self._call.fail(exc)
            raise
        self._call.add_chunk(chunk)
        return chunk

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._call.finish_stream(closed_early=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        call = self.__dict__.get("_call")
        if call is not None and not call.ended:
            call.finish_stream(closed_early=True)


class AsyncTracedStream:
    """An ``openai.AsyncStream`` that records its chunks on the call's span."""

    def __init__(self, stream: Any, call: GenAICall) -> None:
        self._stream = stream
        self._call = call

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._call.finish_stream()
            raise
        except BaseException as exc:
            self._call.fail(exc)
            raise
        self._call.add_chunk(chunk)
        return chunk

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._call.finish_stream(closed_early=True)

    async def aclose(self) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        call = self.__dict__.get("_call")
        if call is not None and not call.ended:
            call.finish_stream(closed_early=True)
