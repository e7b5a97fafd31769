"""Per-span overhead of ``@llmops.observe``, beside the plain OpenTelemetry SDK in the same run.

Variants, each timing one call of ``work(a, b)`` (returns a small dict) with ``perf_counter_ns``:

- ``plain``: the undecorated function (the baseline every overhead is measured from);
- ``otel``: ``with tracer.start_as_current_span("work")`` around it, on its own TracerProvider;
- ``observe``: ``@llmops.observe`` (inputs and output captured as JSON, the default);
- ``observe_no_content``: ``@llmops.observe(capture_input=False, capture_output=False)``.

Both providers export through a ``BatchSpanProcessor`` with the same settings into an exporter that counts
the spans and keeps nothing (no network). Variants are interleaved in rounds so machine noise hits them alike;
after each variant's round its pipeline is flushed (untimed), and the queues hold a whole round, so no span
is dropped: ``exported`` must equal ``calls`` for every variant, or the figures are void.

Two figures per variant:

- **per call** (the issue-3 target): overhead = variant p50 − plain p50 (p99 likewise). ``@observe`` exports
  from a background thread, so this is the cost the application's thread sees;
- **amortised**: wall time of ``AMORTISED_CALLS`` calls in a row plus the flush that exports them all,
  divided by the calls: every CPU cost per span including the background conversion and export (the GIL makes
  the background thread's work land on the same core).

``ratio_vs_otel`` = observe overhead / plain-OTel overhead. Target: observe overhead ≤ 10 µs at p50.
``--quick`` runs a tenth of the calls.
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
QUEUE = 16_384  # holds a whole round, so nothing is dropped between the untimed flushes
BATCH = 512
AMORTISED_CALLS = 5_000


class Count(SpanExporter):
    """Counts the spans of every batch and keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def work(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


class Variants:
    """The four callables, the flush of each one's pipeline and the exporters that count what went out."""

    def __init__(self) -> None:
        self.otel_exporter, self.observe_exporter = Count(), Count()
        self.provider = TracerProvider(shutdown_on_exit=False)
        self.provider.add_span_processor(
            BatchSpanProcessor(self.otel_exporter, max_queue_size=QUEUE, max_export_batch_size=BATCH)
        )
        tracer = self.provider.get_tracer("bench")

        def otel(a: int, b: int) -> dict[str, int]:
            with tracer.start_as_current_span("work"):
                return work(a, b)

        llmops.init(
            exporter=self.observe_exporter, set_global_provider=False, max_queue_size=QUEUE, max_export_batch_size=BATCH
        )
        observed = llmops.observe(name="work")(work)
        bare = llmops.observe(name="work", capture_input=False, capture_output=False)(work)
        self.fns: dict[str, Callable[[int, int], Any]] = {
            "plain": work,
            "otel": otel,
            "observe": observed,
            "observe_no_content": bare,
        }
        self.calls = dict.fromkeys(self.fns, 0)

    def flush(self, name: str) -> None:
        if name == "otel":
            self.provider.force_flush()
        elif name != "plain":
            llmops.flush()

    def close(self) -> None:
        llmops.shutdown()
        self.provider.shutdown()

    def dropped(self) -> dict[str, int]:
        otel = self.calls["otel"] - self.otel_exporter.spans
        observed = self.calls["observe"] + self.calls["observe_no_content"] - self.observe_exporter.spans
        return {"otel": otel, "observe": observed}


def measure(v: Variants, rounds: int, per_round: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in v.fns}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, fn in v.fns.items():
            out = samples[name]
            for i in range(per_round):
                start = clock()
                fn(i, 1)
                out.append((clock() - start) / 1000)
            v.calls[name] += per_round
            v.flush(name)
    return samples


def amortised(v: Variants, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of (calls + flush) wall time / calls, in µs."""
    best: dict[str, list[float]] = {name: [] for name in v.fns}
    for _ in range(repeats):
        for name, fn in v.fns.items():
            start = time.perf_counter()
            for i in range(AMORTISED_CALLS):
                fn(i, 1)
            v.flush(name)
            best[name].append((time.perf_counter() - start) / AMORTISED_CALLS * 1e6)
            v.calls[name] += AMORTISED_CALLS
    return {name: round(pct(values, 0.5), 2) for name, values in best.items()}


def summary(samples: dict[str, list[float]], amortised_us: dict[str, float], dropped: dict[str, int]) -> dict[str, Any]:
    p50 = {name: pct(values, 0.5) for name, values in samples.items()}
    p99 = {name: pct(values, 0.99) for name, values in samples.items()}
    over50 = {name: round(p50[name] - p50["plain"], 2) for name in samples if name != "plain"}
    over99 = {name: round(p99[name] - p99["plain"], 2) for name in samples if name != "plain"}
    return {
        "calls_per_variant": len(samples["plain"]),
        "p50_us": p50,
        "p99_us": p99,
        "overhead_p50_us": over50,
        "overhead_p99_us": over99,
        "ratio_vs_otel_p50": round(over50["observe"] / over50["otel"], 3),
        "ratio_vs_otel_p50_no_content": round(over50["observe_no_content"] / over50["otel"], 3),
        "amortised_us_per_call": amortised_us,
        "amortised_overhead_us": {
            k: round(v - amortised_us["plain"], 2) for k, v in amortised_us.items() if k != "plain"
        },
        "dropped_spans": dropped,
        "target_p50_us": TARGET_US,
        "target_met": over50["observe"] <= TARGET_US and not any(dropped.values()),
    }


def main() -> None:
    quick = "--quick" in sys.argv
    v = Variants()
    try:
        measure(v, 2, 2000)  # warm-up
        samples = measure(v, 20, 1000 if quick else 10_000)
        amortised_us = amortised(v, 3 if quick else 10)
        v.flush("otel")
        v.flush("observe")
        result = summary(samples, amortised_us, v.dropped())
    finally:
        v.close()
    save("sdk_overhead", result)


if __name__ == "__main__":
    main()
