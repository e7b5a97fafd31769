"""Batches (issue 7, part 6): batch throughput, and what a running batch costs live traffic.

One ``llmops serve`` process (SQLite, every call recorded as a span) in front of ``_upstream.py`` (answers at once).
1. Throughput: N chat lines as one batch (upload, create, poll until completed) vs the same N calls made directly
   through the gateway's ``/v1/chat/completions`` at the same concurrency (``LLMOPS_BATCH_CONCURRENCY``, 2), in the
   same run. Reported: lines/s of each and the ratio. A batch line also commits its result row (durability).
2. Live latency: p50 / p99 of sequential live chat calls with no batch running, then with a large batch running
   (the batch yields to live requests in flight). Reported: both p50s and the ratio.
``--quick``: fewer lines and calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import LLMOPS, PY, free_port, pct, process, save, serve_env  # noqa: E402

KEY = "sk-llmops-benchmark-key-0000000000000000"
HEADERS = {"authorization": f"Bearer {KEY}"}
BODY = {"model": "bench", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
CONCURRENCY = 2


def _jsonl(n: int) -> bytes:
    line = {"method": "POST", "url": "/v1/chat/completions", "body": BODY}
    return b"".join(orjson.dumps({**line, "custom_id": f"l{i}"}) + b"\n" for i in range(n))


def _submit(c: httpx.Client, n: int) -> str:
    f = c.post("/v1/files", files={"file": ("b.jsonl", _jsonl(n))}, data={"purpose": "batch"}).json()
    body = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    return str(c.post("/v1/batches", json=body).json()["id"])


def _wait(c: httpx.Client, batch_id: str) -> dict[str, Any]:
    while True:
        b: dict[str, Any] = c.get(f"/v1/batches/{batch_id}").json()
        if b["status"] in ("completed", "failed", "cancelled"):
            return b
        time.sleep(0.02)


async def _direct(base: str, n: int) -> float:
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as c:
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                queue.pop()
                r = await c.post("/v1/chat/completions", json=BODY)
                assert r.status_code == 200, r.text

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - t


def _live(c: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = c.post("/v1/chat/completions", json=BODY)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    n_lines, n_live = (300, 200) if quick else (2000, 500)
    up_port, gw_port = free_port(), free_port()
    home = Path(tempfile.mkdtemp())
    deployment = {"provider": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1", "model": "bench"}
    (home / "llmops.yaml").write_text(yaml.safe_dump({"models": [{"name": "bench", "deployments": [deployment]}]}))
    env = serve_env(home, gw_port, KEY, LLMOPS_BATCH_CONCURRENCY=str(CONCURRENCY))
    base = f"http://127.0.0.1:{gw_port}"
    with (
        process(
            [PY, str(Path(__file__).parent / "_upstream.py"), str(up_port)], ready_url=f"http://127.0.0.1:{up_port}"
        ),
        process([LLMOPS, "serve"], env=env, ready_url=base + "/healthz"),
        httpx.Client(base_url=base, headers=HEADERS, timeout=60) as c,
    ):
        _live(c, 200)  # warm-up
        direct_s = asyncio.run(_direct(base, n_lines))
        t = time.perf_counter()
        done = _wait(c, _submit(c, n_lines))
        batch_s = time.perf_counter() - t
        assert done["request_counts"]["completed"] == n_lines, done
        idle = _live(c, n_live)
        running = _submit(c, n_lines * 5)
        time.sleep(0.5)
        busy = _live(c, n_live)
        still = c.get(f"/v1/batches/{running}").json()
        c.post(f"/v1/batches/{running}/cancel")
    save(
        "batches",
        {
            "lines": n_lines,
            "concurrency": CONCURRENCY,
            "batch_lines_per_s": round(n_lines / batch_s, 1),
            "direct_calls_per_s": round(n_lines / direct_s, 1),
            "batch_vs_direct": round(direct_s / batch_s, 3),
            "live_p50_ms_idle": round(pct(idle, 0.5), 3),
            "live_p99_ms_idle": round(pct(idle, 0.99), 3),
            "live_p50_ms_with_batch": round(pct(busy, 0.5), 3),
            "live_p99_ms_with_batch": round(pct(busy, 0.99), 3),
            "live_p50_ratio": round(pct(busy, 0.5) / pct(idle, 0.5), 3),
            "batch_status_after_live_run": still["status"],
            "batch_progress_during_live_run": still["request_counts"],
        },
    )


if __name__ == "__main__":
    main()
