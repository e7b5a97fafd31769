"""Gateway overhead, throughput and memory against an upstream that answers at once (recording on).

1. Added latency at concurrency 1: the same request sent straight to the upstream and through the gateway by a
   raw keep-alive socket client (benchmarks/_rawhttp.py: httpx alone costs more than the target),
   interleaved; added = gateway − direct at p50 and p99.
2. Throughput: wrk (C, keep-alive) through the gateway for a fixed time at 8 connections (the target's
   operating point: >= 1,000 req/s with p99 <= 50 ms) and at 32 (saturation: req/s ceiling); req/s and p99.
3. RSS of the gateway process after a warm-up of ~10k requests (steady state: pools, caches and allocator
   arenas filled) vs. after 100,000 more requests, sampled after every 20 s of load (the series is saved).
One gateway worker process (`llmops serve`), SQLite store, every call recorded.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import LLMOPS, PY, free_port, pct, process, rss_mb, save  # noqa: E402
from _rawhttp import RawClient  # noqa: E402

KEY = "sk-llmops-benchmark-key-0000000000000000"
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY.decode()}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""


def latency_pair(direct: str, gateway: str, n: int) -> dict[str, float]:
    """Interleaved single requests on two keep-alive connections (one per server) of a raw socket client."""
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    clients = [(RawClient(direct, headers), []), (RawClient(gateway, headers), [])]
    requests = [c.request_bytes(BODY) for c, _ in clients]
    clock = time.perf_counter
    for _ in range(300):
        for (c, _), req in zip(clients, requests, strict=True):
            c.send(req)
    for _ in range(n):
        for (c, out), req in zip(clients, requests, strict=True):
            t = clock()
            status, _, body = c.send(req)
            out.append((clock() - t) * 1000)
            assert status == 200, body
    d, g = clients[0][1], clients[1][1]
    return {
        "direct_p50_ms": pct(d, 0.5),
        "direct_p99_ms": pct(d, 0.99),
        "gateway_p50_ms": pct(g, 0.5),
        "gateway_p99_ms": pct(g, 0.99),
        "added_p50_ms": pct(g, 0.5) - pct(d, 0.5),
        "added_p99_ms": pct(g, 0.99) - pct(d, 0.99),
    }


def wrk(url: str, seconds: int, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": p99_ms, "requests": total, "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    quick = "--quick" in sys.argv
    up_port, gw_port = free_port(), free_port()
    home = Path(tempfile.mkdtemp())
    cfg = {
        "models": [
            {
                "name": "bench",
                "deployments": [{"provider": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1", "model": "bench"}],
            }
        ]
    }
    (home / "llmops.yaml").write_text(yaml.safe_dump(cfg))
    env = {
        "LLMOPS_HOME": str(home),
        "LLMOPS_PORT": str(gw_port),
        "LLMOPS_ADMIN_KEY": KEY,
        "LLMOPS_CONFIG": str(home / "llmops.yaml"),
        "LLMOPS_LOG_LEVEL": "warning",
    }
    script = home / "post.lua"
    script.write_text(LUA)
    direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    gateway = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    with (
        process([PY, str(Path(__file__).parent / "_upstream.py"), str(up_port)], ready_url=direct.rsplit("/v1", 1)[0]),
        process([LLMOPS, "serve"], env=env, ready_url=f"http://127.0.0.1:{gw_port}/healthz") as gw,
    ):
        lat = latency_pair(direct, gateway, 500 if quick else 3000)
        wrk(gateway, 3 if quick else 10, 32, script)  # warm-up
        rss_start = rss_mb(gw.pid)
        tput8 = wrk(gateway, 5 if quick else 20, 8, script)
        tput = wrk(gateway, 5 if quick else 20, 32, script)
        done = tput["requests"] + tput8["requests"]
        series = [rss_mb(gw.pid)]
        while not quick and done < 100_000:
            done += wrk(gateway, 20, 32, script)["requests"]
            series.append(rss_mb(gw.pid))
        time.sleep(1)
        rss_end = rss_mb(gw.pid)
        ready = httpx.get(f"http://127.0.0.1:{gw_port}/readyz").json()
    save(
        "gateway_overhead",
        {
            "latency_concurrency_1": lat,
            "throughput_wrk_c8": tput8,
            "throughput_wrk_c32": tput,
            "rss": {
                "after_warmup_mb": rss_start,
                "after_requests_mb": rss_end,
                "requests": done,
                "change_pct": (rss_end - rss_start) / rss_start * 100,
                "series_mb": series,
            },
            "spans": ready["spans"],
        },
    )


if __name__ == "__main__":
    main()
