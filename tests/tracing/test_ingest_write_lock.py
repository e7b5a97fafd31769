"""The ingest write lock excludes other processes and threads, and a holder that dies releases it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from llmops.tracing.ingest import WriteLock

HOLD = """
import sys, time
from llmops.tracing.ingest import WriteLock
lock = WriteLock(sys.argv[1])
lock.__enter__()
print("held", flush=True)
time.sleep(600)
"""


def _acquire_within(lock: WriteLock, seconds: float) -> bool:
    done = threading.Event()

    def take() -> None:
        with lock:
            done.set()

    threading.Thread(target=take, daemon=True).start()
    return done.wait(seconds)


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "ingest.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = pickle.loads(pickle.dumps(WriteLock(path)))  # as a worker process receives it
        assert not _acquire_within(lock, 0.5)  # another process holds it
        os.kill(holder.pid, signal.SIGKILL)  # dies holding it, as an OOM-killed worker would
        holder.wait()
        started = time.monotonic()
        assert _acquire_within(lock, 10)
        assert time.monotonic() - started < 5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    lock, inside, overlaps = WriteLock(str(tmp_path / "l")), [0], [0]

    def work() -> None:
        for _ in range(200):
            with lock:
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0
