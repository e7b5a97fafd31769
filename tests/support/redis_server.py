"""A throwaway, real Redis server for tests: started on a free loopback port, stopped (and its directory removed)
on exit. No persistence (``--save "" --appendonly no``): each test session gets an empty server.

Set ``LLMOPS_TEST_REDIS_URL`` to use an existing server instead (tests then share it: use distinct key prefixes).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

ENV_URL = "LLMOPS_TEST_REDIS_URL"
STARTUP_TIMEOUT = 15.0


class RedisUnavailable(RuntimeError):
    """redis-server could not be found or started."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis() -> Iterator[str]:
    """Yields ``redis://127.0.0.1:PORT/0`` of a fresh server."""
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        raise RedisUnavailable("redis-server not found: run scripts/system-deps.sh (make test does)")
    workdir = tempfile.mkdtemp(prefix="llmops-redis-")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", workdir, "--daemonize", "no", "--loglevel", "warning"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ping(port):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RedisUnavailable(f"redis-server exited with {proc.returncode}: {err.strip()}")
            if time.monotonic() > deadline:
                raise RedisUnavailable(f"redis-server did not answer on port {port} in {STARTUP_TIMEOUT}s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
