"""Three real `llmops serve` processes sharing one Redis and one database enforce ONE budget and ONE rate limit
(reliability.md T3/T4 with 3 processes): requests are spread round-robin over the three and released at once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway_limits.conftest import PRICED, call_cost, priced_config
from tests.support.fake_upstream import FakeUpstream

LLMOPS = str(Path(sys.executable).parent / "llmops")
ADMIN = "sk-llmops-replicas-admin-key-0123456789"
TEXT = "three replicas"
BODY = {"model": PRICED, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 10}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become healthy")


@pytest.fixture
def replicas(tmp_path: Path, fake_upstream: FakeUpstream, redis_url: str) -> Iterator[list[str]]:
    config = tmp_path / "llmops.yaml"
    config.write_text(yaml.safe_dump(priced_config(fake_upstream)))
    env = {
        **os.environ,
        "LLMOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "LLMOPS_REDIS_URL": redis_url,
        "LLMOPS_CONFIG": str(config),
        "LLMOPS_ADMIN_KEY": ADMIN,
        "LLMOPS_LIMITS_CONFIG_TTL_S": "0.2",
        "LLMOPS_ONLINE_EVAL_ENABLED": "false",
        "LLMOPS_TRACING_INGEST_WORKERS": "0",
    }
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for i in range(3):  # one after the other: the first one migrates the shared database
            port = _free_port()
            home = tmp_path / f"home{i}"
            proc = subprocess.Popen(
                [LLMOPS, "serve"],
                env={**env, "LLMOPS_HOME": str(home), "LLMOPS_PORT": str(port)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
            _wait_healthy(bases[-1], proc)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _spread(bases: list[str], key: str, n: int, body: dict[str, Any]) -> list[httpx.Response]:
    barrier = asyncio.Barrier(n)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=n)) as client:

        async def one(i: int) -> httpx.Response:
            await barrier.wait()
            url = bases[i % len(bases)] + "/v1/chat/completions"
            return await client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})

        return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.slow
def test_three_processes_enforce_one_budget_and_one_rate_limit(replicas: list[str]) -> None:
    """Budget of 20 calls, 90 simultaneous requests over 3 processes: at most 20 served and the spend (read from
    any replica) equals their cost. Then rpm=10 on a key, 30 simultaneous requests over 3 processes: at most
    10 admitted, the rest 429 rate_limit_exceeded."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    c = call_cost(TEXT)
    made = httpx.post(
        replicas[0] + "/api/budgets", json={"name": "shared", "limit_usd": round(20 * c, 9)}, headers=admin
    )
    assert made.status_code == 201, made.text
    budget_id = made.json()["budget_id"]
    time.sleep(0.5)  # LLMOPS_LIMITS_CONFIG_TTL_S=0.2: every replica sees the new budget
    replies = asyncio.run(_spread(replicas, ADMIN, 90, BODY))
    served = [r for r in replies if r.status_code == 200]
    assert 0 < len(served) <= 20
    assert {r.json()["error"]["code"] for r in replies if r.status_code != 200} == {"budget_exceeded"}
    deadline = time.monotonic() + 20
    while True:
        usage = [httpx.get(f"{b}/api/budgets/{budget_id}", headers=admin).json() for b in replicas]
        if all(u["reserved_usd"] == 0 for u in usage) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all(u["reserved_usd"] == 0 for u in usage)
    assert [u["spent_usd"] for u in usage] == [pytest.approx(len(served) * c, abs=1e-9)] * 3
    assert usage[0]["spent_usd"] <= usage[0]["limit_usd"] + 1e-9
    httpx.delete(f"{replicas[0]}/api/budgets/{budget_id}", headers=admin)

    key = httpx.post(replicas[1] + "/api/keys", json={"name": "rl"}, headers=admin).json()
    limit = {"scope": "key", "subject": key["key_id"], "rpm": 10}
    assert httpx.put(replicas[2] + "/api/rate-limits", json=limit, headers=admin).status_code == 200
    time.sleep(0.5)
    replies = asyncio.run(_spread(replicas, key["secret"], 30, BODY))
    admitted = [r for r in replies if r.status_code == 200]
    assert 0 < len(admitted) <= 10
    assert {r.json()["error"]["code"] for r in replies if r.status_code != 200} == {"rate_limit_exceeded"}
