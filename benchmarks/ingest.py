"""OTLP ingest throughput and big-trace paging against `llmops serve` (one process, SQLite, redaction on).

1. Sustained ingest: loader processes POST pre-serialized OTLP/protobuf batches of 512 spans (a realistic
   agent mix: LLM calls with messages, tools, retrieval with documents, embeddings; OTel GenAI and
   OpenInference attributes) to /v1/traces, each waiting for its 200 (= committed) before the next. Reported:
   spans/s acknowledged, and the count queryable afterwards (must equal every acknowledged span).
2. A 10,000-span trace: ingested in batches, then ``GET /api/traces/{id}`` (first page, 500 spans) and
   ``GET /api/traces/{id}/spans`` pages timed (median and max of repeated runs).
3. Optionally the same load against Arize Phoenix (installed into /tmp/phoenix-venv by this script when
   PyPI allows; ``--no-phoenix`` skips it); the ratio is reported, or why it could not run.
4. In-run baselines, the same sustained load with ``LLMOPS_TRACING_INGEST_WORKERS=1`` (one worker prepares, the
   server's writer thread commits: the stop-11 design) and ``=0`` (decode and writes share the writer thread).
``--quick`` shortens every phase (a smoke run for CI); ``--workers N`` sets LLMOPS_TRACING_INGEST_WORKERS of the
measured server (default 2: workers commit their own batches), ``--loaders N`` the number of loader processes
(default 3).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import LLMOPS, free_port, process, save, wait_http  # noqa: E402
from _rawhttp import RawClient  # noqa: E402

KEY = "sk-llmops-benchmark-key-0000000000000000"
BATCH = 512
TEXT = (
    "Summarise the quarterly report for the board. Revenue grew 12% year over year, driven by the "
    "enterprise segment; churn fell to 3.1%. Highlight risks in the supply chain and the new markets. "
)


def _attrs(d: dict[str, Any]) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    out = []
    for k, v in d.items():
        if isinstance(v, bool):
            val = AnyValue(bool_value=v)
        elif isinstance(v, int):
            val = AnyValue(int_value=v)
        elif isinstance(v, float):
            val = AnyValue(double_value=v)
        else:
            val = AnyValue(string_value=str(v))
        out.append(KeyValue(key=k, value=val))
    return out


def _agent_spans(rng: random.Random, i: int) -> list[tuple[str, dict[str, Any]]]:
    """(name, attributes) of the 8 spans of one agent turn; the first is the root."""
    msgs = f'[{{"role":"user","parts":[{{"type":"text","content":"{TEXT} turn {i}"}}]}}]'
    out = f'[{{"role":"assistant","parts":[{{"type":"text","content":"{TEXT[:150]}"}}],"finish_reason":"stop"}}]'
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.usage.input_tokens": rng.randint(50, 900),
        "gen_ai.usage.output_tokens": rng.randint(5, 300),
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(48):x}",
        "gen_ai.input.messages": msgs,
        "gen_ai.output.messages": out,
        "server.address": "api.openai.com",
        "session.id": f"session-{i % 97}",
        "user.id": f"user-{i % 31}",
    }
    oi_llm = {
        "openinference.span.kind": "LLM",
        "llm.system": "anthropic",
        "llm.model_name": "claude-3-5-haiku",
        "llm.token_count.prompt": rng.randint(50, 900),
        "llm.token_count.completion": rng.randint(5, 300),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You are a helpful analyst.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": TEXT,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": TEXT[:120],
        "llm.invocation_parameters": '{"temperature": 0.1, "max_tokens": 256}',
    }
    retr = {"openinference.span.kind": "RETRIEVER", "input.value": f"quarterly revenue {i}"}
    for d in range(3):
        retr |= {
            f"retrieval.documents.{d}.document.id": f"doc-{rng.randint(1, 10_000)}",
            f"retrieval.documents.{d}.document.score": rng.random(),
            f"retrieval.documents.{d}.document.content": TEXT[: 80 + 20 * d],
        }
    tool = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search_web",
        "input.value": '{"q": "supply chain risk"}',
        "input.mime_type": "application/json",
        "output.value": TEXT[:200],
    }
    emb = {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small"}
    root = {"openinference.span.kind": "AGENT", "input.value": TEXT[:100], "user.id": f"user-{i % 31}"}
    chain = {"openinference.span.kind": "CHAIN", "input.value": TEXT[:60], "output.value": TEXT[:90]}
    return [
        ("agent run", root),
        ("chat gpt-4o-mini", llm),
        ("retrieve", retr),
        ("embed query", emb),
        ("ChatAnthropic", oi_llm),
        ("execute_tool search_web", tool),
        ("chat gpt-4o-mini", dict(llm)),
        ("format answer", chain),
    ]


def make_batch(seed: int, n: int = BATCH, *, trace_id: bytes | None = None) -> bytes:
    """One serialized ExportTraceServiceRequest of ``n`` spans (traces of 8, or one given trace)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_attrs({"service.name": "bench-agent", "deployment.environment": "bench"}))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    for t in range(0, n, 8):
        tid = trace_id or rng.randbytes(16)
        root_id = rng.randbytes(8)
        for j, (name, attrs) in enumerate(_agent_spans(rng, seed * 1000 + t)[: n - t]):
            sid = root_id if j == 0 else rng.randbytes(8)
            start = now + (seed * n + t + j) * 1000
            sp = Span(trace_id=tid, span_id=sid, name=name, kind=3 if j else 1, start_time_unix_nano=start)
            sp.end_time_unix_nano = start + rng.randint(1, 900) * 1_000_000
            if j or trace_id is not None:
                sp.parent_span_id = root_id if j else b""
            sp.attributes.extend(_attrs(attrs))
            ss.spans.append(sp)
    return req.SerializeToString()


def _loader(url: str, headers: dict[str, str], payloads: list[bytes], out: Any) -> None:
    """POST each payload on one keep-alive connection, waiting for each answer (raw socket client: httpx cost
    ~5 µs of CPU per span on these 2 cores, taken from the servers under test; same client for phoenix)."""
    acked = errors = 0
    client = RawClient(url, {k.lower(): v for k, v in headers.items()})
    requests = [client.request_bytes(body) for body in payloads]
    for request in requests:
        try:
            status, _, _ = client.send(request)
        except OSError:
            status = 0
        if status == 200:
            acked += BATCH
        else:
            errors += 1
    client.close()
    out.put((acked, errors))


def sustained(url: str, headers: dict[str, str], batches: int, loaders: int, *, seed: int) -> dict[str, float]:
    per = [[make_batch(seed + w * batches + b) for b in range(batches)] for w in range(loaders)]
    queue: Any = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_loader, args=(url, headers, p, queue)) for p in per]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    acked = sum(r[0] for r in results)
    return {
        "spans_acked": acked,
        "errors": sum(r[1] for r in results),
        "seconds": elapsed,
        "spans_per_s": acked / elapsed,
    }


def big_trace(base: str, headers: dict[str, str], spans: int, runs: int) -> dict[str, Any]:
    trace_id = os.urandom(16)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        for b in range(0, spans, BATCH):
            body = make_batch(900_000 + b, min(BATCH, spans - b), trace_id=trace_id)
            assert c.post("/v1/traces", content=body).status_code == 200
        first, pages = [], []
        for _ in range(runs):
            t = time.perf_counter()
            detail = c.get(f"/api/traces/{trace_id.hex()}")
            first.append((time.perf_counter() - t) * 1000)
            assert detail.status_code == 200 and detail.json()["spans_truncated"], detail.text[:300]
            cursor, seen = detail.json()["spans_next_cursor"], 0
            while cursor:
                t = time.perf_counter()
                page = c.get(f"/api/traces/{trace_id.hex()}/spans", params={"cursor": cursor, "limit": 500}).json()
                pages.append((time.perf_counter() - t) * 1000)
                cursor, seen = page["next_cursor"], seen + len(page["data"])
        count = detail.json()["span_count"]
    return {
        "spans": count,
        "first_page_ms_median": statistics.median(first),
        "first_page_ms_max": max(first),
        "next_pages_ms_median": statistics.median(pages),
        "first_page_target_ms": 300,
    }


def queryable(base: str, headers: dict[str, str]) -> int:
    """Spans stored, counted through the API (sum of span_count over every trace)."""
    total, cursor = 0, None
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        while True:
            page = c.get("/api/traces", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
            total += sum(t["span_count"] for t in page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return total


# The embedded `local` models are pointed elsewhere: loading them at start-up would compete with the ingest.
CONFIG = """models:
  - name: local
    deployments: [{provider: openai, base_url: "http://127.0.0.1:9/v1"}]
  - name: local-embed
    deployments: [{provider: openai, base_url: "http://127.0.0.1:9/v1"}]
"""


def run_llmops(batches: int, loaders: int, big: int, runs: int, *, workers: int = 1) -> dict[str, Any]:
    port, home = free_port(), Path(tempfile.mkdtemp())
    (home / "llmops.yaml").write_text(CONFIG)
    env = {
        "LLMOPS_HOME": str(home),
        "LLMOPS_PORT": str(port),
        "LLMOPS_ADMIN_KEY": KEY,
        "LLMOPS_LOG_LEVEL": "warning",
        "LLMOPS_CONFIG": str(home / "llmops.yaml"),
        "LLMOPS_TRACING_INGEST_WORKERS": str(workers),
    }
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-protobuf"}
    with process([LLMOPS, "serve"], env=env, ready_url=base + "/healthz"):
        sustained(base + "/v1/traces", headers, 2, loaders, seed=1)  # warm-up
        load = sustained(base + "/v1/traces", headers, batches, loaders, seed=1_000)
        load["spans_queryable"] = queryable(base, headers) - 2 * loaders * BATCH
        load["target_spans_per_s"] = 20_000
        paging = big_trace(base, headers, big, runs) if big else {}
    return {"sustained": load, "big_trace": paging}


def phoenix(batches: int, loaders: int, quick: bool) -> dict[str, Any]:
    """The same load against Arize Phoenix's OTLP receiver, or why it could not run."""
    venv = Path("/tmp/phoenix-venv")
    if not (venv / "bin" / "phoenix").exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "arize-phoenix"],
                check=True,
                capture_output=True,
                timeout=900,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return {"skipped": f"arize-phoenix could not be installed from PyPI: {exc}"}
    port, grpc, home = free_port(), free_port(), tempfile.mkdtemp()
    env = {
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_WORKING_DIR": home,
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    base = f"http://127.0.0.1:{port}"
    headers = {"Content-Type": "application/x-protobuf"}
    try:
        with process([str(venv / "bin" / "phoenix"), "serve"], env=env):
            wait_http(base + "/healthz", timeout=180)
            sustained(base + "/v1/traces", headers, 2, loaders, seed=1)
            return sustained(base + "/v1/traces", headers, batches, loaders, seed=1_000)
    except (RuntimeError, httpx.HTTPError) as exc:
        return {"skipped": f"phoenix did not run: {exc}"}


def main() -> None:
    quick = "--quick" in sys.argv
    batches, loaders = (4, 2) if quick else (60, 3)
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 2
    loaders = int(sys.argv[sys.argv.index("--loaders") + 1]) if "--loaders" in sys.argv else loaders
    result: dict[str, Any] = run_llmops(
        batches, loaders, 2_000 if quick else 10_000, 3 if quick else 20, workers=workers
    )
    result["batch_spans"], result["loader_processes"], result["ingest_workers"] = BATCH, loaders, workers
    if not quick:  # baselines in the same run, interleaved with a second run of the measured setting (single
        # runs on these shared cores swing by +-20 %): the one-worker pipeline, and everything in the writer thread
        one = [run_llmops(batches, loaders, 0, 0, workers=1)["sustained"]]
        again = run_llmops(batches, loaders, 0, 0, workers=workers)["sustained"]
        one.append(run_llmops(batches, loaders, 0, 0, workers=1)["sustained"])
        result["in_thread"] = run_llmops(batches, loaders, 0, 0, workers=0)["sustained"]
        runs = [result["sustained"]["spans_per_s"], again["spans_per_s"]]
        result["measured_runs_spans_per_s"] = runs
        result["one_worker_pipeline_runs_spans_per_s"] = [r["spans_per_s"] for r in one]
        mean, mean_one = statistics.mean(runs), statistics.mean(r["spans_per_s"] for r in one)
        result["ratio_over_one_worker_pipeline"] = mean / mean_one
        result["ratio_over_in_thread"] = mean / result["in_thread"]["spans_per_s"]
    if quick or "--no-phoenix" in sys.argv:
        result["phoenix"] = {"skipped": "not run (--quick or --no-phoenix)"}
    else:
        ph = phoenix(batches, loaders, quick)
        result["phoenix"] = ph
        if "spans_per_s" in ph and ph["spans_per_s"]:
            result["ratio_llmops_over_phoenix"] = result["sustained"]["spans_per_s"] / ph["spans_per_s"]
            if "measured_runs_spans_per_s" in result:
                mean = statistics.mean(result["measured_runs_spans_per_s"])
                result["ratio_llmops_mean_over_phoenix"] = mean / ph["spans_per_s"]
    save("ingest", result)


if __name__ == "__main__":
    main()
