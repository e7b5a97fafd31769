"""Background threads that give way to the request path.

The server shares two cores between its event loop, the span writer, the WAL checkpointer and, on a benchmark
or a small host, the client and the upstream. A background thread at the default priority competes with the
event loop on equal terms, so a request that wakes while the writer holds a core waits for the scheduler; the
gateway's added p99 at concurrency 1 was 3.1 ms with the span writer at the default priority and 2.3 ms with it
lowered (docs/benchmarks.md, issue 2). Linux schedules threads as tasks, so a thread can lower its own priority
(``setpriority`` on its native id); elsewhere this is a no-op.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

BACKGROUND_NICENESS = 10  # niceness added: weight 110 against 1,024 for its peers, ~10% of a contended core, never 0
log = logging.getLogger("llmops.core")


def lower_thread_priority(by: int = BACKGROUND_NICENESS) -> bool:
    """Add ``by`` to the calling thread's niceness (at most 19); True when it took effect.

    Lowering is one-way for an unprivileged process, so call it only in threads that stay background ones."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except OSError as exc:  # a sandbox without setpriority: run at the default priority
        log.debug("could not lower thread priority: %s", exc)
        return False
    return True


def background_executor(name: str) -> ThreadPoolExecutor:
    """A one-thread executor whose thread runs at :data:`BACKGROUND_NICENESS`."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=lower_thread_priority)
