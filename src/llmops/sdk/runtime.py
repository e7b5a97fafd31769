"""``init`` / ``flush`` / ``shutdown``: the SDK's one tracer provider, its exporter and the score sender.

Choices (documented in docs/sdk.md):

- **Our own TracerProvider.** ``init`` never replaces a global provider the application already set. When
  none is set (the default proxy is still in place) and ``set_global_provider=True`` (the default), ours is
  installed globally too, so other OpenTelemetry instrumentation in the process (OpenInference, httpx, ...)
  nests under our spans and is exported to llmops. OpenTelemetry allows one global provider per process:
  a later ``init`` (after ``shutdown``) does not replace it.
- **Light spans on the hot path**: ``@observe`` and ``span()`` make ``_light.LightSpan``s (an OpenTelemetry API
  span without the SDK's per-span work); ``_light_export.LightExport`` buffers them (bounded by
  ``max_queue_size``; dropped and counted when full) and a background thread turns them into SDK
  ``ReadableSpan``s for the provider's processors. Spans of other instrumentation (and ``wrap_openai``) are
  ordinary SDK spans of the same provider and nest under light spans as under any span.
- **Export never blocks and never raises**: a ``BatchSpanProcessor`` (bounded queue, ``max_queue_size``;
  spans are dropped, and logged by OpenTelemetry, when it is full) on a background thread; the OTLP/HTTP
  exporter posts protobuf to ``{base_url}/v1/traces`` with ``Authorization: Bearer {api_key}``; its failures
  are logged by OpenTelemetry's loggers.
- **Flushed at exit**: one ``atexit`` hook calls :func:`shutdown` (spans first, then scores, whose traces must
  reach the server before them). The provider is created with ``shutdown_on_exit=False`` so the order is ours.
- **Configuration** is read from arguments, else environment variables (``LLMOPS_BASE_URL`` /
  ``LLMOPS_API_KEY``, else ``OPENAI_BASE_URL`` without its ``/v1`` / ``OPENAI_API_KEY``, as the prompt client
  does). Not a pydantic-settings class, on purpose: ``import llmops`` must stay light.
- Heavy imports (``opentelemetry.sdk``, the OTLP exporter and its protobuf) happen in :func:`init`, never at
  import time; the hot path (``observe``) only reads the module global ``_runtime``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmops.core.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Tracer

    from llmops.sdk._light_export import LightExport
    from llmops.sdk.scores import ScoreSender

log = logging.getLogger("llmops.sdk")

DEFAULT_BASE_URL = "http://127.0.0.1:4100"
DEFAULT_MAX_CONTENT_BYTES = 16_384
TRACER_NAME = "llmops.sdk"


@dataclass(frozen=True, slots=True)
class Runtime:
    """What ``init`` built; replaced as a whole (never mutated), so readers need no lock."""

    provider: TracerProvider
    tracer: Tracer
    base_url: str
    capture_content: bool
    max_content_bytes: int
    scores: ScoreSender | None
    spans: LightExport  # where ended light spans go
    sampler: Sampler | None  # decides root light spans; None: the default ParentBased(ALWAYS_ON), all sampled


_runtime: Runtime | None = None  # read on every observed call: one global lookup, no lock
_lock = threading.Lock()
_atexit_registered = False


def current() -> Runtime | None:
    return _runtime


def resolve_base_url(value: str | None) -> str:
    url = value or os.environ.get("LLMOPS_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def init(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    service_name: str | None = None,
    capture_content: bool = True,
    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
    max_queue_size: int = 2048,
    max_export_batch_size: int = 512,
    schedule_delay_ms: int = 1000,
    export_timeout_s: float = 10.0,
    set_global_provider: bool = True,
    exporter: SpanExporter | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    score_transport: Any = None,
) -> TracerProvider:
    """Start tracing to an llmops server; returns the SDK's TracerProvider (to instrument other libraries).

    ``exporter`` replaces the OTLP exporter (tests: an ``InMemorySpanExporter``); ``span_processors`` are
    added after the export processor; ``score_transport`` is the httpx transport of score requests.
    Calling ``init`` again shuts the previous setup down (flushing it) and starts a new one.
    """
    global _runtime
    url = resolve_base_url(base_url)
    key = api_key or os.environ.get("LLMOPS_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if exporter is None and not key:
        raise ConfigError("no API key for llmops tracing: pass api_key= or set LLMOPS_API_KEY")
    if max_content_bytes < 64:
        raise ConfigError(f"max_content_bytes must be at least 64, got {max_content_bytes}", param="max_content_bytes")
    if exporter is None:
        exporter = _otlp_exporter(url, key or "", export_timeout_s)
    batch = (max_queue_size, max_export_batch_size, schedule_delay_ms, export_timeout_s)
    provider, light = _provider(exporter, span_processors, service_name=service_name, batch=batch)
    scores = _score_sender(url, key, provider, light, score_transport, export_timeout_s)
    tracer = provider.get_tracer(TRACER_NAME)
    runtime = Runtime(provider, tracer, url, capture_content, max_content_bytes, scores, light, _root_sampler(provider))
    with _lock:
        previous, _runtime = _runtime, runtime
        _register_atexit()
    if previous is not None:
        _close(previous, export_timeout_s)
    if set_global_provider:
        _install_global(provider)
    return provider


def _otlp_exporter(url: str, key: str, timeout_s: float) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s)


def _provider(
    exporter: SpanExporter,
    extra: Sequence[SpanProcessor],
    *,
    service_name: str | None,
    batch: tuple[int, int, int, float],
) -> tuple[TracerProvider, LightExport]:
    """The provider (for SDK spans) and the light-span export feeding the same processors."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Tracer, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from llmops.sdk._inherit import InheritProcessor
    from llmops.sdk._light_export import LightExport

    resource = Resource.create({"service.name": service_name} if service_name else {})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(InheritProcessor())
    queue_size, batch_size, delay_ms, timeout_s = batch
    processors = [
        BatchSpanProcessor(
            exporter,
            max_queue_size=queue_size,
            max_export_batch_size=min(batch_size, queue_size),
            schedule_delay_millis=delay_ms,
            export_timeout_millis=timeout_s * 1000,
        ),
        *extra,
    ]
    for processor in processors:
        provider.add_span_processor(processor)
    enabled = isinstance(provider.get_tracer(TRACER_NAME), Tracer)  # not with OTEL_SDK_DISABLED=true
    light = LightExport(
        processors if enabled else (),
        resource=resource,
        scope=InstrumentationScope(TRACER_NAME),
        max_queue_size=queue_size,
        wake_at=min(batch_size, queue_size),
        interval_s=min(delay_ms / 1000, 0.2),
    )
    return provider, light


def _root_sampler(provider: TracerProvider) -> Sampler | None:
    """The provider's sampler (``OTEL_TRACES_SAMPLER``), or None for the default ``ParentBased(ALWAYS_ON)``, which
    samples every root: light spans then skip the sampler call."""
    from opentelemetry.sdk.trace.sampling import DEFAULT_ON

    sampler = provider.sampler
    return None if sampler.get_description() == DEFAULT_ON.get_description() else sampler


def _score_sender(
    url: str, key: str | None, provider: TracerProvider, light: LightExport, transport: Any, timeout_s: float
) -> ScoreSender | None:
    if not key:
        return None
    from llmops.sdk.scores import ScoreSender

    def flush_spans() -> None:
        light.flush(timeout_s)
        provider.force_flush(int(timeout_s * 1000))

    return ScoreSender(url, key, flush_spans=flush_spans, transport=transport, timeout_s=timeout_s)


def _install_global(provider: TracerProvider) -> None:
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True


def flush(timeout_s: float = 10.0) -> bool:
    """Send every finished span, then every queued score; True when all went out within ``timeout_s``."""
    runtime = _runtime
    if runtime is None:
        return True
    try:
        ok = runtime.spans.flush(timeout_s)
        ok = runtime.provider.force_flush(int(timeout_s * 1000)) and ok
        if runtime.scores is not None:
            ok = runtime.scores.flush(timeout_s) and ok
        return bool(ok)
    except Exception:  # SDK boundary: telemetry never breaks the application
        log.exception("llmops: flush failed")
        return False


def shutdown(timeout_s: float = 10.0) -> None:
    """Flush and stop: spans started afterwards are not recorded (until ``init`` is called again)."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        _close(runtime, timeout_s)


def _close(runtime: Runtime, timeout_s: float) -> None:
    try:
        runtime.spans.close(timeout_s)
        runtime.provider.force_flush(int(timeout_s * 1000))
        if runtime.scores is not None:
            runtime.scores.close(timeout_s)
        runtime.provider.shutdown()
    except Exception:  # SDK boundary
        log.exception("llmops: shutdown failed")
