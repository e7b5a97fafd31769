"""Helpers shared by the benchmark scripts: free ports, subprocess servers, percentiles, RSS, results."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".bench"
PY = sys.executable
LLMOPS = str(Path(PY).parent / "llmops")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, ready_url: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if ready_url:
            wait_http(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s))) - 1))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> dict[str, str]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def save(name: str, data: dict) -> None:  # type: ignore[type-arg]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2))
    print(json.dumps(data, indent=2))


def serve_env(home: Path, port: int, key: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked `llmops serve`: state in ``home`` (with its llmops.yaml), fixed admin key."""
    return {
        "LLMOPS_HOME": str(home),
        "LLMOPS_PORT": str(port),
        "LLMOPS_ADMIN_KEY": key,
        "LLMOPS_CONFIG": str(home / "llmops.yaml"),
        "LLMOPS_LOG_LEVEL": "warning",
        **extra,
    }


@contextmanager
def optional_redis() -> Iterator[str | None]:
    """A throwaway redis-server's URL (the test suite's helper), or None when Redis is not installed."""
    try:
        from tests.support.redis_server import RedisUnavailable, running_redis
    except ImportError:
        yield None
        return
    try:
        with running_redis() as url:
            yield url
    except RedisUnavailable:
        yield None
