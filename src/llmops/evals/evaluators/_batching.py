"""Cross-case batching of NLI calls: concurrent scorers' pairs go to the model together.

The experiment runner scores many items concurrently; each item has only a few (premise, claim) pairs. Sent one
item at a time the model runs many tiny batches; here every caller's pairs wait in one queue, and while the model
works on a batch (in a worker thread) the next callers accumulate, so batches grow with the load by themselves
and no timer is needed. One batcher per event loop (futures belong to a loop).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Protocol

MAX_BATCH_PAIRS = 128


class Nli(Protocol):
    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


class NliBatcher:
    def __init__(self, nli: Nli) -> None:
        self._nli = nli
        self._pending: list[tuple[list[tuple[str, str]], asyncio.Future[list[float]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(pairs), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let callers started in the same tick join the first batch
        while self._pending:
            batch: list[tuple[list[tuple[str, str]], asyncio.Future[list[float]]]] = []
            size = 0
            while self._pending and (not batch or size + len(self._pending[0][0]) <= MAX_BATCH_PAIRS):
                item = self._pending.pop(0)
                batch.append(item)
                size += len(item[0])
            flat = [p for pairs, _ in batch for p in pairs]
            try:
                probs = await asyncio.to_thread(self._nli.contradiction, flat)
            except Exception as exc:  # noqa: BLE001 - a model failure is every waiting caller's failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for pairs, future in batch:
                if not future.done():
                    future.set_result(probs[start : start + len(pairs)])
                start += len(pairs)


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, NliBatcher]] = weakref.WeakKeyDictionary()


def batcher_for(nli: Nli) -> NliBatcher:
    """The running loop's batcher for this model instance."""
    per_loop = _BATCHERS.setdefault(asyncio.get_running_loop(), {})
    if id(nli) not in per_loop:
        per_loop[id(nli)] = NliBatcher(nli)
    return per_loop[id(nli)]
