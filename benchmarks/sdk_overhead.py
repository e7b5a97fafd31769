"""Per-span overhead of ``@llmops.observe``, beside the plain OpenTelemetry SDK in the same run.

Variants, each timing one call of ``work(a, b)`` (returns a small dict) with ``perf_counter_ns``:

- ``plain``: the undecorated function (the baseline every overhead is measured from);
- ``otel``: ``with tracer.start_as_current_span("work")`` around it, on its own TracerProvider;
- ``observe``: ``@llmops.observe`` (inputs and output captured as JSON);
- ``observe_no_content``: ``@llmops.observe(capture_input=False, capture_output=False)``.

Both providers export through a ``BatchSpanProcessor`` with the same settings into an exporter that drops
the batch (no network), so the figures are the in-process cost of creating, attaching and ending a span.
Variants are interleaved in rounds so machine noise hits them alike. Overhead = variant p50 − plain p50
(p99 likewise); ``ratio_vs_otel`` = observe overhead / plain-OTel overhead. Target: observe overhead
≤ 10 µs at p50. ``--quick`` runs a tenth of the calls.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import pct, save  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import llmops  # noqa: E402

TARGET_US = 10.0
QUEUE = 2048
BATCH = 512


class Drop(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def work(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


def variants() -> tuple[dict[str, Callable[[int, int], Any]], TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=QUEUE, max_export_batch_size=BATCH))
    tracer = provider.get_tracer("bench")

    def otel(a: int, b: int) -> dict[str, int]:
        with tracer.start_as_current_span("work"):
            return work(a, b)

    llmops.init(exporter=Drop(), set_global_provider=False, max_queue_size=QUEUE, max_export_batch_size=BATCH)
    observed = llmops.observe(name="work")(work)
    bare = llmops.observe(name="work", capture_input=False, capture_output=False)(work)
    return {"plain": work, "otel": otel, "observe": observed, "observe_no_content": bare}, provider


def measure(fns: dict[str, Callable[[int, int], Any]], rounds: int, per_round: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, fn in fns.items():
            out = samples[name]
            for i in range(per_round):
                start = clock()
                fn(i, 1)
                out.append((clock() - start) / 1000)
    return samples


def summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    p50 = {name: pct(values, 0.5) for name, values in samples.items()}
    p99 = {name: pct(values, 0.99) for name, values in samples.items()}
    over50 = {name: p50[name] - p50["plain"] for name in samples if name != "plain"}
    over99 = {name: p99[name] - p99["plain"] for name in samples if name != "plain"}
    return {
        "calls_per_variant": len(samples["plain"]),
        "p50_us": p50,
        "p99_us": p99,
        "overhead_p50_us": over50,
        "overhead_p99_us": over99,
        "ratio_vs_otel_p50": over50["observe"] / over50["otel"],
        "ratio_vs_otel_p50_no_content": over50["observe_no_content"] / over50["otel"],
        "added_over_otel_p50_us": over50["observe"] - over50["otel"],
        "target_p50_us": TARGET_US,
        "target_met": over50["observe"] <= TARGET_US,
    }


def main() -> None:
    quick = "--quick" in sys.argv
    fns, provider = variants()
    try:
        measure(fns, 2, 2000)  # warm-up
        result = summary(measure(fns, 20, 1000 if quick else 10_000))
    finally:
        llmops.shutdown()
        provider.shutdown()
    save("sdk_overhead", result)


if __name__ == "__main__":
    main()
