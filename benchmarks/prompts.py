"""Prompt registry costs on the hot paths.

1. SDK: ``llmops.get_prompt(name)`` answered from the client's cache (the server is only asked once; the
   HTTP transport is an in-memory stub, so nothing but the cache path is timed). Calls are timed in batches
   of 1,000; mean and p99 of the per-call time over the batches.
2. Gateway, in process (``GatewayService.chat``, recording on, SQLite store) against the fast upstream of
   ``_upstream.py`` over loopback HTTP: the same request with ``model: "bench"`` and with
   ``model: "prompt:bench@production"`` (a chat prompt with two messages and two variables; the plain request
   is the very body the prompt renders to, so only resolution differs), interleaved; added = prompt − plain
   at p50. Loopback HTTP jitter is larger than the difference, so the resolve step is
   also timed by itself: ``apply_prompt`` (cache lookup, label and canary choice, variable checks,
   rendering, request body) in a loop, mean and p99.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import PY, free_port, pct, process, save  # noqa: E402

import llmops  # noqa: E402
from llmops.prompts.client import configure  # noqa: E402

TEMPLATE = {
    "type": "chat",
    "model": "bench",
    "params": {"max_tokens": 5, "temperature": 0},
    "variables": {"customer": "string", "tone": {"type": "string", "default": "friendly"}},
    "messages": [
        {"role": "system", "content": "You are a {{ tone }} support agent for ACME. Answer briefly."},
        {"role": "user", "content": "Hello, I am {{ customer }}. {% if customer %}Thanks!{% endif %}"},
    ],
}
VARIABLES = {"customer": "Ada"}


def sdk_cache(calls: int) -> dict[str, float]:
    version = {"name": "bench", "version": 1, "content": TEMPLATE}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps(version))

    configure("http://stub", "sk-stub", transport=httpx.MockTransport(handler), ttl_s=3600)
    llmops.get_prompt("bench")  # the one fetch
    get = llmops.get_prompt
    batch, per_call = 1000, []
    for _ in range(calls // batch):
        t = time.perf_counter()
        for _ in range(batch):
            get("bench")
        per_call.append((time.perf_counter() - t) / batch * 1e6)
    return {"mean_us": statistics.fmean(per_call), "p99_us": pct(per_call, 0.99), "calls": calls}


def _services(home: Path, up_port: int) -> Any:
    from llmops.app import build_services
    from llmops.core.settings import Settings

    cfg = {
        "models": [
            {"name": "bench", "deployments": [{"provider": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1"}]}
        ]
    }
    (home / "llmops.yaml").write_text(yaml.safe_dump(cfg))
    return build_services(Settings(home=home, config=home / "llmops.yaml"))


async def gateway(svc: Any, n: int) -> dict[str, Any]:
    from llmops.gateway.http import call_context
    from llmops.gateway.prompting import apply_prompt
    from llmops.projects import Principal

    svc.recorder.start()
    key = svc.bootstrap_key.key
    who = Principal(key.project_id, key.key_id, key.name, True)
    await svc.prompts.push(who, TEMPLATE, name="bench", create=True, labels=["production"])
    prompted = {"model": "prompt:bench@production", "llmops_prompt": {"variables": VARIABLES}}
    rendered = await apply_prompt(svc.prompts, call_context({}, who, prompted), prompted)
    plain = {k: v for k, v in rendered.items()}  # the very request the prompt produces, sent as is

    async def call(body: dict[str, Any]) -> float:
        t = time.perf_counter()
        await svc.gateway.chat(call_context({}, who, body), body)
        return (time.perf_counter() - t) * 1000

    for _ in range(300):
        await call(plain)
        await call(prompted)
    a, b = [], []
    for _ in range(n):
        a.append(await call(plain))
        b.append(await call(prompted))
    resolve = []
    for _ in range(n * 10):
        ctx = call_context({}, who, prompted)
        t = time.perf_counter()
        await apply_prompt(svc.prompts, ctx, prompted)
        resolve.append((time.perf_counter() - t) * 1000)
    await svc.recorder.stop()
    await svc.http.aclose()
    return {
        "plain_p50_ms": pct(a, 0.5),
        "prompt_p50_ms": pct(b, 0.5),
        "added_p50_ms": pct(b, 0.5) - pct(a, 0.5),
        "resolve_mean_ms": statistics.fmean(resolve),
        "resolve_p99_ms": pct(resolve, 0.99),
        "calls_each": n,
    }


def main() -> None:
    quick = "--quick" in sys.argv
    sdk = sdk_cache(100_000 if quick else 1_000_000)
    up_port = free_port()
    home = Path(tempfile.mkdtemp())
    up = f"http://127.0.0.1:{up_port}"
    with process([PY, str(Path(__file__).parent / "_upstream.py"), str(up_port)], ready_url=up):
        svc = _services(home, up_port)
        gw = asyncio.run(gateway(svc, 500 if quick else 3000))
        svc.engine.dispose()
    save(
        "prompts",
        {
            "sdk_get_prompt_cached": sdk,
            "gateway_prompt_resolution": gw,
            "targets": {"sdk_cached_us": 5, "resolve_added_ms": 0.2},
        },
    )


if __name__ == "__main__":
    main()
