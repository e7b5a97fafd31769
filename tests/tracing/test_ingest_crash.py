"""Crash consistency of OTLP ingest (reliability T5 / I1, I4): ``llmops serve`` is SIGKILLed and restarted 20
times while clients stream span batches and retry every unacknowledged batch with the same ids. Afterwards every
acknowledged span is stored exactly once, nothing unknown was stored, the trace aggregates match their spans
and SQLite's integrity check passes.

The server is `llmops serve` (its click entry point, in a process of its own per start, see ``LAUNCHER``) with
its own LLMOPS_HOME; its ``local`` models point at an unused URL so no model loads."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import otlp

LLMOPS = str(Path(sys.executable).parent / "llmops")
KEY = "sk-llmops-crash-test-0000000000000000"
RESTARTS = 20
SENDERS = 2
BATCH = 50
CONFIG = """models:
  - name: local
    deployments: [{provider: openai, base_url: "http://127.0.0.1:9/v1"}]
  - name: local-embed
    deployments: [{provider: openai, base_url: "http://127.0.0.1:9/v1"}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Imports `llmops serve`'s code once, then forks one child per start that runs the real entry point
# (`llmops serve`): every start is a new process that opens the database after the previous one was SIGKILLed,
# without paying ~2 s of interpreter start-up and imports 21 times (the test must finish within 90 s).
LAUNCHER = """
import os, sys
import uvicorn, llmops.app, llmops.cli.serve
from llmops.cli.main import cli
for line in sys.stdin:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fd = os.open(os.path.join(os.environ["LLMOPS_HOME"], "server.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            cli(["serve"], prog_name="llmops")
        finally:
            os._exit(1)
    print(pid, flush=True)
"""


class Server:
    """`llmops serve` on a fixed port and home; ``kill()`` is SIGKILL to its whole process group."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, _free_port()
        (home / "llmops.yaml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            "LLMOPS_HOME": str(home),
            "LLMOPS_PORT": str(self.port),
            "LLMOPS_ADMIN_KEY": KEY,
            "LLMOPS_CONFIG": str(home / "llmops.yaml"),
            "LLMOPS_LOG_LEVEL": "warning",
        }
        self.launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid: int | None = None
        self._probe = httpx.Client(timeout=1)  # one client: a new one per poll costs an SSL context each

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.launcher.stdin is not None and self.launcher.stdout is not None
        self.launcher.stdin.write("start\n")
        self.launcher.stdin.flush()
        self.pid = int(self.launcher.stdout.readline())
        deadline = time.monotonic() + 60
        while True:
            try:
                if self._probe.get(self.url + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (self.home / "server.log").read_text()[-3000:]
            time.sleep(0.02)

    def kill(self) -> None:
        assert self.pid is not None
        os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _listening(self.port):  # the dead process's socket is closed by the kernel
            assert time.monotonic() < deadline, "killed server still listening"
            time.sleep(0.01)

    def close(self) -> None:
        self._probe.close()
        self.launcher.kill()
        self.launcher.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Sender(threading.Thread):
    """Streams batches of fresh spans; retries a batch (same ids) until it gets a 200; records what was acked."""

    def __init__(self, url: str, index: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.index, self.stop = url, index, stop
        self.sent: set[tuple[str, str]] = set()
        self.acked: set[tuple[str, str]] = set()
        self.retries = 0
        self.refused: list[int] = []

    def batches(self) -> Iterator[list[dict[str, object]]]:
        n = 0
        while not self.stop.is_set():
            trace_id = f"{self.index + 1:08x}{n:024x}"
            yield [otlp.span(trace_id, f"{i + 1:016x}", f"s{i}") for i in range(BATCH)]
            n += 1

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {KEY}", "content-type": otlp.PROTOBUF}
        with httpx.Client(headers=headers, timeout=10) as client:
            for spans in self.batches():
                body = otlp.request(spans).SerializeToString()
                ids = {(str(s["trace_id"]), str(s["span_id"])) for s in spans}
                self.sent |= ids
                while True:
                    try:
                        r = client.post(self.url + "/v1/traces", content=body)
                        if r.status_code == 200:
                            self.acked |= ids
                            break
                        self.refused.append(r.status_code)  # OTLP: only 429/502/503/504 may be retried
                        if r.status_code not in (429, 502, 503, 504):
                            return
                    except httpx.HTTPError:
                        pass
                    self.retries += 1
                    time.sleep(0.02)  # bounded by the test's restart loop: the server comes back


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_acknowledged_spans_survive_20_kill_9_restarts(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    stop = threading.Event()
    senders = [Sender(server.url, i, stop) for i in range(SENDERS)]
    for s in senders:
        s.start()
    started = time.monotonic()
    try:
        for cycle in range(RESTARTS):
            time.sleep(0.2 + (cycle % 5) * 0.1)  # let batches be in flight, then crash mid-write
            server.kill()
            server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for s in senders:
            s.join(timeout=60)
        server.kill()
        server.close()
    elapsed = time.monotonic() - started
    acked = set().union(*(s.acked for s in senders))
    sent = set().union(*(s.sent for s in senders))
    db = sqlite3.connect(tmp_path / "llmops.db")
    try:
        rows = db.execute("SELECT trace_id, span_id FROM spans").fetchall()
        stored = set(rows)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counted = "SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id"
        mismatched = db.execute(f"SELECT count(*) FROM traces t WHERE span_count != ({counted})").fetchone()[0]
    finally:
        db.close()
    assert [code for s in senders for code in s.refused if code not in (503,)] == []
    assert len(acked) > 10 * BATCH and sum(s.retries for s in senders) > 0  # the test really crashed mid-stream
    assert acked <= stored, f"{len(acked - stored)} acknowledged spans lost"
    assert len(rows) == len(stored), "duplicate rows"
    assert stored <= sent, f"{len(stored - sent)} phantom rows"
    assert mismatched == 0, "trace aggregates disagree with their spans"
    assert elapsed < 90, f"took {elapsed:.0f}s"
