"""Light spans (``@observe`` / ``span()``) as OpenTelemetry spans: nesting with SDK spans both ways, remote
parents and sampling, the Span API from user code, export metadata, and the bounded, non-blocking buffer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import llmops
from llmops.sdk import runtime
from llmops.sdk._light import LightSpan
from tests.sdk.conftest import Recorded, parent_id, span_id

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_SPAN_ID = 0xB7AD6B7169203331


def _sdk_tracer() -> trace.Tracer:
    rt = runtime.current()
    assert rt is not None
    return rt.provider.get_tracer("test.instrumentation")


@pytest.fixture
def app_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An application's own OpenTelemetry SDK provider, separate from the llmops one."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _remote(flags: int) -> context.Context:
    return TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{TRACE_ID:032x}-{REMOTE_SPAN_ID:016x}-{flags:02x}"}
    )


def test_sdk_span_inside_observe_is_its_child(
    sdk: Recorded, app_provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """Instrumentation using the OpenTelemetry SDK inside an observed call (on llmops' provider or the app's
    own) nests under the call's span: same trace id, parent id = the observed span, user/session inherited."""
    provider, app_exporter = app_provider

    @llmops.observe
    def handler() -> None:
        llmops.set_user("u-1")
        with _sdk_tracer().start_as_current_span("db.query"):
            pass
        with provider.get_tracer("app").start_as_current_span("app.step"):
            pass

    handler()
    outer, query = sdk.one("handler"), sdk.one("db.query")
    (app_step,) = app_exporter.get_finished_spans()
    assert isinstance(outer, ReadableSpan) and outer.context is not None
    for child in (query, app_step):
        assert child.context is not None and child.context.trace_id == outer.context.trace_id
        assert parent_id(child) == span_id(outer)
    assert sdk.attrs("db.query")["user.id"] == "u-1"


def test_observe_inside_sdk_span_is_its_child(
    sdk: Recorded, app_provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """An observed call under a span of the plain OpenTelemetry SDK is its child and takes its user id."""
    provider, app_exporter = app_provider

    @llmops.observe
    def step() -> int:
        return 1

    with provider.get_tracer("app").start_as_current_span("request") as request:
        request.set_attribute("user.id", "u-2")
        step()
    (root,) = app_exporter.get_finished_spans()
    child = sdk.one("step")
    assert root.context is not None and child.context is not None
    assert child.context.trace_id == root.context.trace_id
    assert parent_id(child) == span_id(root)
    assert child.parent is not None and not child.parent.is_remote
    assert sdk.attrs("step")["user.id"] == "u-2"


def test_remote_parent_sampled_and_not_sampled(sdk: Recorded) -> None:
    """Under a propagated ``traceparent`` the span joins that trace (parent marked remote); under one whose
    sampled flag is off nothing is recorded and the call still runs, as the SDK's parent-based default does."""

    @llmops.observe
    def serve(n: int) -> int:
        return n

    for flags, n in ((1, 1), (0, 2)):
        token = context.attach(_remote(flags))
        try:
            assert serve(n) == n
            with llmops.span("block") as block:
                assert block.trace_id == f"{TRACE_ID:032x}"
        finally:
            context.detach(token)
    spans = [s for s in sdk.spans() if s.name == "serve"]
    assert len(spans) == 1 and [s.name for s in sdk.spans()].count("block") == 1
    (span,) = spans
    assert span.context is not None and span.context.trace_id == TRACE_ID
    assert span.parent is not None and span.parent.span_id == REMOTE_SPAN_ID and span.parent.is_remote


def test_span_api_from_user_code(sdk: Recorded) -> None:
    """``trace.get_current_span()`` inside an observed call is its span, and every Span API call lands on the
    exported span; attribute values are cleaned as the SDK cleans them (an object of no attribute type is not
    exported: None, as the SDK does)."""
    linked = SpanContext(TRACE_ID, REMOTE_SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))

    @llmops.observe
    def job() -> None:
        current = trace.get_current_span()
        assert isinstance(current, LightSpan) and current.is_recording()
        current.set_attribute("retries", 2)
        current.set_attributes({"labels": ["a", "b"], "bad": object()})  # type: ignore[dict-item]
        current.add_event("cache.miss", {"key": "k1"})
        current.add_link(linked, {"why": "batch"})
        current.update_name("job-renamed")
        current.set_status(StatusCode.OK)
        current.set_status(StatusCode.ERROR, "ignored: OK is final")

    job()
    with _sdk_tracer().start_as_current_span("reference") as reference:  # the SDK's treatment of the same values
        reference.set_attributes({"labels": ["a", "b"], "bad": object()})  # type: ignore[dict-item]
    span = sdk.one("job-renamed")
    attrs = dict(span.attributes or {})
    assert attrs["retries"] == 2 and tuple(attrs["labels"]) == ("a", "b")
    assert attrs["bad"] is sdk.attrs("reference")["bad"] is None
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [("cache.miss", {"key": "k1"})]
    assert [(link.context.span_id, dict(link.attributes or {})) for link in span.links] == [
        (REMOTE_SPAN_ID, {"why": "batch"})
    ]
    assert span.status.status_code is StatusCode.OK
    assert span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time


def test_ended_span_ignores_later_changes(sdk: Recorded) -> None:
    """After ``end`` a light span is not recording: attributes, events and a second ``end`` change nothing."""
    with llmops.span("done") as handle:
        light = trace.get_current_span()
    assert not light.is_recording()
    light.set_attribute("late", 1)
    light.add_event("late")
    light.end()
    handle.set_output("late")
    assert "late" not in sdk.attrs("done") and not sdk.one("done").events
    assert [s.name for s in sdk.spans()] == ["done"]


def test_error_event_carries_the_exception(sdk: Recorded) -> None:
    """``record_exception`` writes the OpenTelemetry exception event attributes (type, message, stacktrace)."""

    @llmops.observe
    def fail() -> None:
        raise LookupError("missing")

    with pytest.raises(LookupError):
        fail()
    (event,) = sdk.one("fail").events
    attrs = dict(event.attributes or {})
    assert attrs["exception.type"] == "LookupError" and attrs["exception.message"] == "missing"
    assert "raise LookupError" in str(attrs["exception.stacktrace"]) and attrs["exception.escaped"] == "True"


def test_exported_spans_carry_resource_scope_and_kind(clean_env: None) -> None:
    """Light spans are exported with the provider's resource (``service_name``) and the ``llmops.sdk`` scope."""
    exporter = InMemorySpanExporter()
    llmops.init(exporter=exporter, set_global_provider=False, service_name="checkout")
    try:
        llmops.observe(lambda: None)()
        llmops.flush()
        (span,) = exporter.get_finished_spans()
        assert isinstance(span.resource, Resource) and span.resource.attributes["service.name"] == "checkout"
        assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "llmops.sdk"
        assert span.kind is trace.SpanKind.INTERNAL
    finally:
        llmops.shutdown()


def test_flush_delivers_every_span_from_many_threads(clean_env: None) -> None:
    """Spans ended on several threads at once all reach the exporter by ``flush`` (queue large enough)."""
    exporter = InMemorySpanExporter()
    llmops.init(exporter=exporter, set_global_provider=False, max_queue_size=10_000, schedule_delay_ms=60_000)

    @llmops.observe
    def unit(i: int) -> int:
        return i

    def run() -> None:
        for i in range(1000):
            unit(i)

    try:
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert llmops.flush()
        assert len(exporter.get_finished_spans()) == 4000
        assert len({s.context.span_id for s in exporter.get_finished_spans() if s.context}) == 4000
    finally:
        llmops.shutdown()


class _Blocking(SpanProcessor):
    """A processor stuck in ``on_end`` until released (a slow exporter behind a SimpleSpanProcessor)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.release.wait(30)
        self.seen += 1


def test_full_buffer_drops_and_counts_without_blocking(clean_env: None, caplog: pytest.LogCaptureFixture) -> None:
    """With the export thread stuck, calls go on at full speed: spans beyond ``max_queue_size`` are dropped,
    counted and logged; ``flush`` gives up after its timeout instead of hanging."""
    blocking = _Blocking()
    llmops.init(
        exporter=InMemorySpanExporter(),
        set_global_provider=False,
        max_queue_size=16,
        max_export_batch_size=4,
        span_processors=[blocking],
    )

    @llmops.observe
    def work() -> None:
        return None

    try:
        for _ in range(2000):
            work()
        rt = runtime.current()
        assert rt is not None and rt.spans.dropped >= 2000 - 16 - 4
        assert llmops.flush(timeout_s=0.2) is False
    finally:
        blocking.release.set()
        with caplog.at_level(logging.WARNING, logger="llmops.sdk"):
            llmops.shutdown()
    assert blocking.seen <= 16 + 4
    assert any("spans dropped" in r.getMessage() for r in caplog.records)


def test_links_to_invalid_context_without_data_are_ignored(sdk: Recorded) -> None:
    """``add_link`` with an invalid context and no attributes is a no-op (the SDK's rule)."""
    with llmops.span("s"):
        trace.get_current_span().add_link(trace.INVALID_SPAN_CONTEXT)
    assert not sdk.one("s").links


def _names(spans: Sequence[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]


def test_links_type_is_otel_link(sdk: Recorded) -> None:
    """Exported links are OpenTelemetry ``Link`` objects (what exporters encode)."""
    with llmops.span("linked"):
        trace.get_current_span().add_link(SpanContext(TRACE_ID, REMOTE_SPAN_ID, True, TraceFlags(1)))
    assert all(isinstance(link, Link) for link in sdk.one("linked").links)
    assert _names(sdk.spans()) == ["linked"]


def _sampled_sdk(monkeypatch: pytest.MonkeyPatch, sampler: str, arg: str | None = None) -> Recorded:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    exporter = InMemorySpanExporter()
    llmops.init(exporter=exporter, set_global_provider=False)
    return Recorded(exporter)


def _traced_calls(n: int) -> list[str]:
    """``n`` root calls, each with an observed child, a ``span()`` block and an SDK span inside; the traceparent
    header each root would propagate."""

    @llmops.observe
    def child(i: int) -> int:
        with _sdk_tracer().start_as_current_span("sdk call"):
            return i

    @llmops.observe
    def root(i: int) -> str:
        with llmops.span("block"):
            child(i)
        return llmops.trace_headers()["traceparent"] if llmops.trace_headers() else ""

    return [root(i) for i in range(n)]


def test_roots_follow_the_traces_sampler_and_their_spans_follow_the_root(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.25: the roots kept are exactly those whose trace id the
    ratio rule keeps, each kept trace is whole (root, block, child, SDK span), and a dropped root drops everything
    under it, SDK spans and the propagated sampled flag included."""
    sdk = _sampled_sdk(monkeypatch, "parentbased_traceidratio", "0.25")
    try:
        headers = _traced_calls(400)
        spans = sdk.spans()
    finally:
        llmops.shutdown()
    bound = round(0.25 * 2**64)
    by_trace: dict[int, list[str]] = {}
    for s in spans:
        assert s.context is not None
        by_trace.setdefault(s.context.trace_id, []).append(s.name)
    propagated = {int(h.split("-")[1], 16): h.endswith("-01") for h in headers if h}
    assert len(propagated) == 400
    kept = {t for t, sampled in propagated.items() if sampled}
    assert kept == {t for t in propagated if t & (2**64 - 1) < bound}  # the TraceIdRatioBased rule
    assert set(by_trace) == kept and 50 < len(kept) < 150
    assert all(sorted(names) == ["block", "child", "root", "sdk call"] for names in by_trace.values())


def test_always_off_records_nothing_and_every_call_still_runs(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = _sampled_sdk(monkeypatch, "always_off")
    try:
        headers = _traced_calls(20)

        @llmops.observe
        def fails() -> None:
            raise ValueError("still raised")

        with pytest.raises(ValueError, match="still raised"):
            fails()
        spans = sdk.spans()
    finally:
        llmops.shutdown()
    assert spans == []
    assert all(h.endswith("-00") for h in headers)
