"""The ingest worker processes (and their forkserver) end when the server is killed: nothing is left running; and
each worker runs pinned to its own CPU (unless turned off)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llmops.tracing.ingest import pin_to_cpu
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


def _serve(tmp_path: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    (tmp_path / "llmops.yaml").write_text(CONFIG)
    env = os.environ | {
        "LLMOPS_HOME": str(tmp_path),
        "LLMOPS_PORT": str(_free_port()),
        "LLMOPS_ADMIN_KEY": KEY,
        "LLMOPS_CONFIG": str(tmp_path / "llmops.yaml"),
        "LLMOPS_LOG_LEVEL": "warning",
        **extra_env,
    }
    return subprocess.Popen([LLMOPS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pool_workers(server_pid: int, deadline_s: float = 60) -> list[int]:
    """The pool's two worker processes (children of the forkserver, itself a child of the server)."""
    deadline = time.monotonic() + deadline_s
    while True:
        workers = [pid for child in _children(server_pid) for pid in _children(child)]
        if len(workers) >= 2:
            return workers
        assert time.monotonic() < deadline, "the ingest workers never started"
        time.sleep(0.1)


def _affinities(pids: list[int], *, settle_s: float = 30) -> list[set[int]]:
    """Each process's allowed CPUs, once every one is pinned to a single CPU (or after ``settle_s``)."""
    deadline = time.monotonic() + settle_s
    while True:
        found = [os.sched_getaffinity(pid) for pid in pids]
        if all(len(cpus) == 1 for cpus in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.kill()
        server.wait()


def test_worker_processes_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    server = _serve(tmp_path)
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
        _stop(server)


def _in_child(index: int, out: Any) -> None:
    out.put((pin_to_cpu(index), os.sched_getaffinity(0)))


def test_pin_to_cpu_pins_round_robin_over_the_allowed_cpus() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    ctx = multiprocessing.get_context("spawn")  # a child process: pinning must not touch the test's own process
    for index in (0, 1, len(cpus) + 1):
        out = ctx.Queue()
        child = ctx.Process(target=_in_child, args=(index, out))
        child.start()
        chosen, allowed = out.get(timeout=60)
        child.join(timeout=60)
        if len(cpus) < 2:
            assert (chosen, allowed) == (None, set(cpus))
        else:
            assert chosen == cpus[index % len(cpus)]
            assert allowed == {chosen}
    assert sorted(os.sched_getaffinity(0)) == cpus


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_each_ingest_worker_runs_on_its_own_cpu(tmp_path: Path) -> None:
    server = _serve(tmp_path)
    try:
        first, second = _affinities(_pool_workers(server.pid)[:2])
        assert len(first) == 1 and len(second) == 1
        assert first != second
        assert first | second <= os.sched_getaffinity(0)
    finally:
        _stop(server)


def test_workers_are_not_pinned_when_turned_off(tmp_path: Path) -> None:
    server = _serve(tmp_path, LLMOPS_TRACING_PIN_INGEST_WORKERS="false")
    try:
        workers = _pool_workers(server.pid)[:2]
        time.sleep(1.0)  # what a pinning initializer would have done by now
        assert all(os.sched_getaffinity(pid) == os.sched_getaffinity(server.pid) for pid in workers)
    finally:
        _stop(server)
