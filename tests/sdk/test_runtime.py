"""``init`` / ``flush`` / ``shutdown``: configuration, provider ownership, exit flushing, failure isolation,
bounded memory, and ``import llmops`` staying light."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmops
from llmops.core.errors import ConfigError
from llmops.sdk import runtime


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_without_a_key_is_a_config_error(clean_env: None) -> None:
    """Exporting to a server needs a key: ``init()`` with none (argument or environment) fails at once."""
    with pytest.raises(ConfigError, match="LLMOPS_API_KEY"):
        llmops.init(base_url="http://127.0.0.1:1")
    assert runtime.current() is None


def test_server_and_key_come_from_the_environment(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``OPENAI_BASE_URL`` (its ``/v1`` dropped) / ``OPENAI_API_KEY`` are used when the ``LLMOPS_*`` variables
    are unset; ``LLMOPS_BASE_URL`` wins when set."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gw.local:4100/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llmops.init(set_global_provider=False)
    try:
        rt = runtime.current()
        assert rt is not None and rt.base_url == "http://gw.local:4100" and rt.scores is not None
        monkeypatch.setenv("LLMOPS_BASE_URL", "http://other:1")
        llmops.init(set_global_provider=False)
        assert runtime.current().base_url == "http://other:1"  # type: ignore[union-attr]
    finally:
        llmops.shutdown()


def test_init_again_flushes_the_previous_setup(clean_env: None) -> None:
    """A second ``init`` exports what the first one still held and sends new spans to the new exporter."""
    first, second = InMemorySpanExporter(), InMemorySpanExporter()

    @llmops.observe
    def work() -> int:
        return 1

    llmops.init(exporter=first, set_global_provider=False, schedule_delay_ms=60_000)
    work()
    llmops.init(exporter=second, set_global_provider=False)
    work()
    llmops.shutdown()
    assert len(first.get_finished_spans()) == 1
    assert len(second.get_finished_spans()) == 1


def test_import_llmops_is_light() -> None:
    """``import llmops`` loads no OpenTelemetry, FastAPI, SQLAlchemy or pydantic; using the SDK loads the
    OpenTelemetry API only (the SDK and exporter wait for ``init``), never server code."""
    done = _run(
        """
        import sys
        import llmops
        heavy = ("opentelemetry", "fastapi", "sqlalchemy", "pydantic", "starlette", "httpx")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        llmops.observe, llmops.span, llmops.wrap_openai, llmops.score
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy[1:] or m.startswith("opentelemetry.sdk")))
        ours = ("llmops.sdk", "llmops.core")
        print(sorted(m for m in sys.modules if m.startswith("llmops.") and not m.startswith(ours)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]", "[]"]


def test_global_provider_is_set_only_when_the_app_has_none() -> None:
    """With no global provider, ``init`` installs its own (so other instrumentation exports to llmops); a
    provider the application set first is left in place."""
    done = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import llmops
        ours = llmops.init(exporter=InMemorySpanExporter())
        print(trace.get_tracer_provider() is ours)
        """
    )
    assert done.returncode == 0 and done.stdout.split() == ["True"], done.stderr
    done = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import llmops
        app_provider = TracerProvider()
        trace.set_tracer_provider(app_provider)
        ours = llmops.init(exporter=InMemorySpanExporter())
        print(trace.get_tracer_provider() is app_provider, ours is not app_provider)
        """
    )
    assert done.returncode == 0 and done.stdout.split() == ["True", "True"], done.stderr


def test_spans_are_flushed_at_exit() -> None:
    """A program that never calls ``flush``/``shutdown`` still exports its spans when it exits."""
    done = _run(
        """
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
        import llmops

        class Printer(SpanExporter):
            def export(self, spans):
                print(*(s.name for s in spans), flush=True)
                return SpanExportResult.SUCCESS

        llmops.init(exporter=Printer(), schedule_delay_ms=600_000)

        @llmops.observe
        def last_words():
            return "bye"

        last_words()
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["last_words"]


class _Raising(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("exporter bug")


def test_export_failures_never_reach_the_caller(clean_env: None) -> None:
    """An unreachable server (real OTLP exporter) or an exporter that raises costs spans, never the
    application's calls: results come back and ``flush``/``shutdown`` return normally."""

    @llmops.observe
    def work(i: int) -> int:
        return i

    llmops.init(f"http://127.0.0.1:{_closed_port()}", "sk-x", set_global_provider=False, export_timeout_s=0.5)
    assert [work(i) for i in range(20)] == list(range(20))
    llmops.flush(timeout_s=5)
    llmops.init(exporter=_Raising(), set_global_provider=False)
    assert work(1) == 1
    llmops.flush(timeout_s=5)
    llmops.shutdown()


class _Stalled(SpanExporter):
    """An exporter stuck until released (a server that does not answer)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def test_memory_is_bounded_when_export_stalls(clean_env: None) -> None:
    """With export stuck, spans beyond the bounded queues are dropped instead of piling up, and the
    application is not slowed down by waiting on the exporter. Two queues of ``max_queue_size`` each hold
    spans: the light-span buffer and the BatchSpanProcessor's queue (plus the batches being exported)."""
    stalled = _Stalled()
    llmops.init(exporter=stalled, set_global_provider=False, max_queue_size=16, max_export_batch_size=4)

    @llmops.observe
    def work() -> None:
        return None

    try:
        for _ in range(2000):
            work()
    finally:
        stalled.release.set()
        llmops.shutdown()
    assert 0 < stalled.exported <= 2 * 16 + 4 * 2
