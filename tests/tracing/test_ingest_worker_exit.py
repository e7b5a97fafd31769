"""The ingest worker process (and its forkserver) end when the server is killed: nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tracing.test_ingest_crash import CONFIG, KEY, LLMOPS, _free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(entry))
    return out


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def test_worker_processes_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    (tmp_path / "llmops.yaml").write_text(CONFIG)
    env = os.environ | {
        "LLMOPS_HOME": str(tmp_path),
        "LLMOPS_PORT": str(_free_port()),
        "LLMOPS_ADMIN_KEY": KEY,
        "LLMOPS_CONFIG": str(tmp_path / "llmops.yaml"),
        "LLMOPS_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([LLMOPS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 3:  # the forkserver and the pool's two workers, started with the app
            assert time.monotonic() < deadline, "the ingest worker never started"
            time.sleep(0.1)
            workers = _descendants(server.pid)
        os.kill(server.pid, signal.SIGKILL)  # the server only, as the OOM killer would
        server.wait()
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, f"still running after the server died: {workers}"
            time.sleep(0.1)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
