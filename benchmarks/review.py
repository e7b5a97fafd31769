"""Online evaluation and judge calibration costs (in process, SQLite in a tmp dir).

1. Online worker: N one-span traces recorded, one rule with the deterministic ``contains`` scorer; time of
   ``OnlineWorker.run_once`` (poll the trace store, sample, queue, load each trace, score, write the score,
   persist the cursor) against the baseline of the unavoidable work done directly in the same run: reading each
   trace's spans, the scorer on the same case and ``ScoreService.create_score`` (another score name, no
   idempotency key). Ratio = worker / baseline.
2. Idle poll: ``run_once`` with nothing new, per enabled rule (the steady-state cost of a rule).
3. Calibration: ``calibrate`` (pairing by trace, category mapping, κ, weighted κ, matrix) on 10,000 labelled
   pairs against a numpy baseline computing only Cohen's κ from the same category codes.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import save  # noqa: E402

from llmops.core.db import create_db_engine, upgrade  # noqa: E402
from llmops.evals._sql_review import SqlReviewStore  # noqa: E402
from llmops.evals.calibration import calibrate  # noqa: E402
from llmops.evals.evaluators.registry import create_evaluator  # noqa: E402
from llmops.evals.models import EvalCase  # noqa: E402
from llmops.evals.online import NewRule, OnlineRuleService, OnlineWorker  # noqa: E402
from llmops.evals.review import ScoreConfig, text_of  # noqa: E402
from llmops.tracing import NewScore, Score, ScoreService, Span, TraceService  # noqa: E402
from llmops.tracing._sql import SqlTraceStore  # noqa: E402
from llmops.tracing._sql_scores import SqlScoreStore  # noqa: E402

N = 2000
SPEC = {"name": "contains", "value": "7"}


def _spans(n: int) -> list[Span]:
    return [
        Span(
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
            project_id="p",
            name="chat m",
            kind="llm",
            start_ns=1_000_000 + i,
            end_ns=1_000_100 + i,
            request_model="m",
            input=[{"role": "user", "parts": [{"type": "text", "content": f"question {i}"}]}],
            output=[{"role": "assistant", "parts": [{"type": "text", "content": f"answer {i}"}]}],
        )
        for i in range(n)
    ]


async def online(tmp: Path) -> dict[str, float]:
    engine = create_db_engine(f"sqlite:///{tmp / 'bench.db'}")
    upgrade(engine)
    spans = _spans(N)
    SqlTraceStore(engine).insert_spans(spans)
    traces, scores = TraceService(SqlTraceStore(engine)), ScoreService(SqlScoreStore(engine))
    store = SqlReviewStore(engine)
    factory = lambda spec, _: create_evaluator(spec)  # noqa: E731
    rules = OnlineRuleService(store, evaluators=factory)
    await rules.create_rule("p", NewRule("bench", [SPEC], delay_s=0, start_ns=0))
    worker = OnlineWorker(store, traces, scores, factory, queue_size=N + 10, max_traces_per_poll=N)
    t0 = time.perf_counter()
    await worker.run_once()
    worker_s = time.perf_counter() - t0
    assert worker.stats.scored == N, worker.stats
    evaluator = create_evaluator(SPEC)
    t0 = time.perf_counter()
    for s in spans:
        await traces.list_spans("p", s.trace_id, cursor=None, limit=100)
        result = await evaluator.score(EvalCase(input=s.input, output=text_of(s.output)))
        new = NewScore(trace_id=s.trace_id, name="baseline", value=bool(result.value), source="code")
        await scores.create_score("p", new)
    baseline_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(50):
        await worker.run_once()
    idle_ms = (time.perf_counter() - t0) / 50 * 1000
    engine.dispose()
    return {
        "traces": N,
        "worker_traces_per_s": round(N / worker_s, 1),
        "baseline_traces_per_s": round(N / baseline_s, 1),
        "worker_over_baseline": round(worker_s / baseline_s, 3),
        "idle_poll_ms_per_rule": round(idle_ms, 3),
    }


def kappa_numpy(h: np.ndarray, j: np.ndarray, k: int) -> float:
    m = np.bincount(h * k + j, minlength=k * k).reshape(k, k) / len(h)
    po, pe = np.trace(m), float(m.sum(1) @ m.sum(0))
    return float((po - pe) / (1 - pe))


def calibration() -> dict[str, float]:
    rng = np.random.default_rng(0)
    n = 10_000
    h = rng.integers(1, 6, n)
    j = np.clip(h + rng.integers(-1, 2, n), 1, 5)
    cfg = ScoreConfig("c", "p", "q", "numeric", 1, 5)

    def score(i: int, v: int, source: str) -> Score:
        return Score(
            f"score_{source}{i}", "p", f"{i:032x}", None, "q", "numeric", float(v), None, None, source, None, i
        )

    human = [score(i, int(v), "human") for i, v in enumerate(h)]
    judge = [score(i, int(v), "code") for i, v in enumerate(j)]
    t0 = time.perf_counter()
    result = calibrate("j", cfg, human, judge)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = kappa_numpy(h - 1, j - 1, 5)
    numpy_s = time.perf_counter() - t0
    assert abs((result.kappa or 0) - base) < 1e-9
    return {
        "pairs": n,
        "calibrate_ms": round(ours * 1000, 2),
        "numpy_kappa_ms": round(numpy_s * 1000, 3),
        "calibrate_over_numpy": round(ours / numpy_s, 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = {"online": asyncio.run(online(Path(tmp))), "calibration": calibration()}
    save("review", result)


if __name__ == "__main__":
    main()
