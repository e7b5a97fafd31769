"""`llmops serve` as a real subprocess: first start prints the admin key, calls are served and recorded,
SIGTERM flushes the span queue, and the CLI client commands talk to it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llmops.core.db import create_db_engine
from llmops.tracing import TraceFilter
from llmops.tracing._sql import SqlTraceStore

LLMOPS = str(Path(sys.executable).parent / "llmops")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "LLMOPS_HOME": str(home), "LLMOPS_PORT": str(port)}
    return subprocess.Popen([LLMOPS, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_healthy(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@pytest.mark.slow
def test_serve_prints_key_serves_records_and_flushes_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(8))
        key = re.search(r"(sk-llmops-[A-Za-z0-9_\-]+)", banner)
        assert key, banner
        assert (tmp_path / "admin_key").read_text().strip() == key.group(1)
        _wait_healthy(base, proc)
        env = {**os.environ, "LLMOPS_HOME": str(tmp_path), "LLMOPS_BASE_URL": base}
        models = subprocess.run([LLMOPS, "models", "list"], env=env, capture_output=True, text=True, timeout=60)
        assert models.returncode == 0 and "local-embed" in models.stdout
        chat = subprocess.run(
            [LLMOPS, "chat", "Say yes.", "--max-tokens", "4"], env=env, capture_output=True, text=True, timeout=120
        )
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout.strip()
        bad = subprocess.run(
            [LLMOPS, "chat", "x", "--model", "nope"], env=env, capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 1 and "model_not_found" in bad.stderr
        for i in range(20):
            r = httpx.post(
                base + "/v1/embeddings",
                json={"model": "local-embed", "input": f"doc {i}"},
                headers={"Authorization": f"Bearer {key.group(1)}"},
                timeout=30,
            )
            assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    engine = create_db_engine(f"sqlite:///{tmp_path / 'llmops.db'}")
    traces = SqlTraceStore(engine).list_traces(_project_id(engine), TraceFilter(), after=None, limit=100)
    engine.dispose()
    assert len(traces) == 22  # 20 embeddings + 1 chat + 1 failed chat: nothing lost at shutdown


def _project_id(engine) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("select project_id from projects").scalar_one())
