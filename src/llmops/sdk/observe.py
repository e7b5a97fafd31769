"""``@observe``: a span per call of a function, coroutine function, generator or async generator.

Usable bare (``@observe``) or with options (``@observe(name=..., kind=..., capture_input=False, tags=[...])``).

- **Inputs** are the call's arguments by parameter name (``self``/``cls`` left out) as JSON; **outputs** the
  return value (a string as text, the rest as JSON); both clipped to ``init(max_content_bytes=...)``.
- **Generators**: the span covers the first ``next`` to exhaustion; the body runs with the span current at
  each step, the consumer's code between items does not. The output is the items (joined when all strings),
  collected up to the size limit. ``send``/``throw``/``close`` (and ``asend``/``athrow``/``aclose``) reach the
  wrapped generator; a generator closed early ends its span as ok with ``llmops.closed_early``.
- **Exceptions** are recorded (event, ``error.type``, status ERROR) and re-raised unchanged (same object).
- **Hot path**: names, kind attributes and the argument mapping are computed at decoration time; a call
  reads one module global (no span at all before ``init``), encodes its content with orjson, starts a
  ``_light.LightSpan`` (an OpenTelemetry API span whose export work happens on a background thread) and
  attaches it to the OpenTelemetry context, so instrumentation called inside nests under it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from llmops.sdk import runtime
from llmops.sdk._attributes import INPUT_MIME, INPUT_VALUE, OUTPUT_MIME, OUTPUT_VALUE, SpanKindName
from llmops.sdk._content import TRUNCATED, ArgNames, as_text, clip
from llmops.sdk._light import LightSpan, attach, current_context, detach, start_span, with_span
from llmops.sdk.spans import record_error, span_attributes

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Spec:
    """What a decorated function's spans share, computed once."""

    name: str
    attributes: dict[str, AttributeValue]
    args: ArgNames | None  # None: inputs not captured
    capture_output: bool


@overload
def observe(func: F, /) -> F: ...


@overload
def observe(
    *,
    name: str | None = None,
    kind: SpanKindName | None = None,
    capture_input: bool = True,
    capture_output: bool = True,
    tags: Sequence[str] | None = None,
) -> Callable[[F], F]: ...


def observe(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    kind: SpanKindName | None = None,
    capture_input: bool = True,
    capture_output: bool = True,
    tags: Sequence[str] | None = None,
) -> Any:
    """Trace every call of the decorated function as a span named ``name`` (default: the function's name)."""
    attributes = span_attributes(kind, tags)  # validates kind now, not at the first call

    def decorate(fn: Any) -> Any:
        if isinstance(fn, staticmethod | classmethod):
            return type(fn)(decorate(fn.__func__))
        spec = _Spec(name or _default_name(fn), attributes, ArgNames(fn) if capture_input else None, capture_output)
        if inspect.isasyncgenfunction(fn):
            wrapper = _wrap_async_generator(fn, spec)
        elif inspect.isgeneratorfunction(fn):
            wrapper = _wrap_generator(fn, spec)
        elif inspect.iscoroutinefunction(fn):
            wrapper = _wrap_coroutine(fn, spec)
        else:
            wrapper = _wrap_function(fn, spec)
        return functools.wraps(fn)(wrapper)

    return decorate(func) if func is not None else decorate


def _default_name(fn: Any) -> str:
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return str(qualname).rsplit("<locals>.", 1)[-1]


def _start(
    rt: runtime.Runtime, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: Context
) -> LightSpan | None:
    """The call's span under the current span of ``ctx``, its input recorded (None: parent not sampled). The input
    is serialised only once the span is known to be recorded (not for a root the sampler dropped)."""
    span = start_span(spec.name, spec.attributes.copy() if spec.attributes else {}, ctx, rt.spans, rt.sampler)
    if span is not None and spec.args is not None and (args or kwargs) and rt.capture_content and not span.end_ns:
        bound = spec.args(args, kwargs)
        if bound:
            span.attrs[INPUT_VALUE], span.attrs[INPUT_MIME] = as_text(bound, rt.max_content_bytes)
    return span


def _end(rt: runtime.Runtime, spec: _Spec, span: LightSpan, result: Any) -> None:
    if result is not None and spec.capture_output and rt.capture_content and not span.end_ns:
        attrs = span.attrs
        attrs[OUTPUT_VALUE], attrs[OUTPUT_MIME] = as_text(result, rt.max_content_bytes)
    span.end()


def _fail(span: LightSpan, exc: BaseException) -> None:
    record_error(span, exc)
    span.end()


def _wrap_function(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rt = runtime._runtime
        if rt is None:
            return fn(*args, **kwargs)
        ctx = current_context()
        span = _start(rt, spec, args, kwargs, ctx)
        if span is None:
            return fn(*args, **kwargs)
        token = attach(with_span(ctx, span))
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            detach(token)
            _fail(span, exc)
            raise
        detach(token)
        _end(rt, spec, span, result)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rt = runtime._runtime
        if rt is None:
            return await fn(*args, **kwargs)
        ctx = current_context()
        span = _start(rt, spec, args, kwargs, ctx)
        if span is None:
            return await fn(*args, **kwargs)
        token = attach(with_span(ctx, span))
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            detach(token)
            _fail(span, exc)
            raise
        detach(token)
        _end(rt, spec, span, result)
        return result

    return wrapper


class _Run:
    """One generator run: its span, the context to attach while the generator body runs, its items.
    Every method is a no-op when the SDK was not initialised at the first ``next`` (or the parent is not
    sampled)."""

    __slots__ = ("rt", "span", "ctx", "items", "budget", "dropped")

    def __init__(self, rt: runtime.Runtime | None, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ctx = current_context()
        self.span = _start(rt, spec, args, kwargs, ctx) if rt is not None else None
        self.rt = rt if self.span is not None else None
        self.ctx = with_span(ctx, self.span) if self.span is not None else None
        capture = self.rt is not None and spec.capture_output and self.rt.capture_content
        self.items: list[Any] | None = [] if capture else None
        self.budget = rt.max_content_bytes if rt is not None else 0
        self.dropped = False

    def attach(self) -> object:
        return attach(self.ctx) if self.ctx is not None else None

    def detach(self, token: object) -> None:
        if token is not None:
            detach(token)

    def add(self, item: Any) -> None:
        if self.items is None:
            return
        if self.budget <= 0:
            self.dropped = True
            return
        self.items.append(item)
        self.budget -= len(item) if isinstance(item, str) else 16  # rough; clip() makes the exact cut

    def fail(self, exc: BaseException) -> None:
        if self.span is not None:
            if isinstance(exc, GeneratorExit):
                self._output(None)
            _fail(self.span, exc)

    def end(self, returned: Any) -> None:
        if self.span is not None:
            self._output(returned)
            self.span.end()

    def _output(self, returned: Any) -> None:
        items, span, rt = self.items, self.span, self.rt
        if items is None or span is None or rt is None or not span.is_recording():
            return
        value: Any = items if items or returned is None else returned
        if items and all(isinstance(i, str) for i in items):
            value = "".join(items)
        text, mime = as_text(value, rt.max_content_bytes)
        if self.dropped and not text.endswith(TRUNCATED):
            text = clip(text, rt.max_content_bytes - len(TRUNCATED.encode()))
            text = text if text.endswith(TRUNCATED) else text + TRUNCATED
        if not span.end_ns:
            span.attrs[OUTPUT_VALUE], span.attrs[OUTPUT_MIME] = text, mime


def _wrap_generator(fn: Callable[..., Generator[Any, Any, Any]], spec: _Spec) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        rt = runtime._runtime
        if rt is None:
            return (yield from fn(*args, **kwargs))
        run = _Run(rt, spec, args, kwargs)
        try:
            returned = yield from _drive(fn(*args, **kwargs), run)
        except BaseException as exc:
            run.fail(exc)
            raise
        run.end(returned)
        return returned

    return wrapper


def _drive(gen: Generator[Any, Any, Any], run: _Run) -> Generator[Any, Any, Any]:
    """Delegate to ``gen`` like ``yield from``, with the run's span current only while ``gen`` runs."""
    step: Callable[[Any], Any] = gen.send
    arg: Any = None
    while True:
        token = run.attach()
        try:
            item = step(arg)
        except StopIteration as stop:
            return stop.value
        finally:
            run.detach(token)
        run.add(item)
        try:
            arg = yield item
            step = gen.send
        except GeneratorExit:
            token = run.attach()
            try:
                gen.close()
            finally:
                run.detach(token)
            raise
        except BaseException as exc:
            step, arg = gen.throw, exc


def _wrap_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], spec: _Spec) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        run = _Run(runtime._runtime, spec, args, kwargs)
        agen = fn(*args, **kwargs)
        step: Callable[[Any], Any] = agen.asend
        arg: Any = None
        try:
            while True:
                token = run.attach()
                try:
                    item = await step(arg)
                except StopAsyncIteration:
                    break
                finally:
                    run.detach(token)
                run.add(item)
                try:
                    arg = yield item
                    step = agen.asend
                except GeneratorExit:
                    await _aclose(agen, run)
                    raise
                except BaseException as exc:
                    step, arg = agen.athrow, exc
        except BaseException as exc:
            run.fail(exc)
            raise
        run.end(None)

    return wrapper


async def _aclose(agen: AsyncGenerator[Any, Any], run: _Run) -> None:
    token = run.attach()
    try:
        await agen.aclose()
    finally:
        run.detach(token)
