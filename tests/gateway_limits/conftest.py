"""Helpers of the budget / rate-limit tests: a priced model on the fake upstream, budget and counter reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

PRICE_PER_TOKEN = 0.001  # USD: input and output alike (1000 $/Mtok)
PRICED = "priced"
FREE = "free"


def priced_config(fake: FakeUpstream, **deployment: Any) -> dict[str, Any]:
    """Alias ``priced`` (1000 $/Mtok in and out, through ``prices:``) and ``free`` (price 0) on the fake."""
    cfg = fake_config(
        fake,
        {"name": PRICED, "deployments": [openai_dep(fake, "fake-priced", retries=0, **deployment)]},
        {"name": FREE, "deployments": [openai_dep(fake, "fake-free", retries=0)]},
        retries=0,
    )
    cfg["prices"] = {
        "fake-priced": {"input_per_mtok": PRICE_PER_TOKEN * 1e6, "output_per_mtok": PRICE_PER_TOKEN * 1e6},
        "fake-free": {"input_per_mtok": 0, "output_per_mtok": 0},
    }
    return cfg


def call_cost(text: str) -> float:
    """What the fake upstream charges for one user message ``text`` (usage counts words; reply "echo: <text>")."""
    words = len(text.split())
    return round((words + words + 1) * PRICE_PER_TOKEN, 9)


def create_budget(srv: RunningServer, key: str | None = None, **body: Any) -> dict[str, Any]:
    resp = httpx.post(srv.base_url + "/api/budgets", json={"name": "b", **body}, headers=srv.headers(key), timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def settled_budget(srv: RunningServer, budget_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The budget once no reservation is left in flight (settlements run just after the replies)."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{srv.base_url}/api/budgets/{budget_id}", headers=srv.headers(), timeout=30).json()
        if body["reserved_usd"] == 0 or time.monotonic() > deadline:
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)


async def burst(base_url: str, key: str, n: int, body: dict[str, Any]) -> list[httpx.Response]:
    """``n`` requests released at once (one barrier), as in LiteLLM #40095's race test."""
    barrier = asyncio.Barrier(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one() -> httpx.Response:
            await barrier.wait()
            return await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})

        return list(await asyncio.gather(*(one() for _ in range(n))))
