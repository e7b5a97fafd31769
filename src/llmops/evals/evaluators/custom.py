"""User-written scorers: a plain function (sync or async) turned into an :class:`Evaluator`.

The function takes the :class:`EvalCase` and returns a number (in [0, 1] by convention), a bool, or a full
:class:`ScoreResult`. Sync functions run in a worker thread, so a slow one never blocks the event loop. An
exception becomes a result with ``error`` (the runner records it per item) instead of stopping the run.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from llmops.core.errors import InvalidInputError
from llmops.evals.models import EvalCase, ScoreResult

ScoreFunction = Callable[[EvalCase], Any] | Callable[[EvalCase], Awaitable[Any]]


class FunctionScorer:
    kind = "custom"

    def __init__(self, fn: ScoreFunction, *, name: str, version: str = "1", threshold: float | None = None) -> None:
        if not callable(fn):
            raise InvalidInputError(f"scorer {name!r}: not a function")
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)
        self.name, self.version, self.threshold = name, version, threshold

    async def score(self, case: EvalCase) -> ScoreResult:
        try:
            out = await self._fn(case) if self._is_async else await asyncio.to_thread(self._fn, case)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - user code: record per item, never stop the run
            return ScoreResult(self.name, None, error=f"{type(exc).__name__}: {exc}")
        if isinstance(out, ScoreResult):
            return out if out.name == self.name else replace(out, name=self.name)
        if isinstance(out, bool):
            return ScoreResult(self.name, 1.0 if out else 0.0, passed=out, data_type="boolean")
        if isinstance(out, int | float):
            passed = None if self.threshold is None else float(out) >= self.threshold
            return ScoreResult(self.name, float(out), passed=passed)
        return ScoreResult(
            self.name, None, error=f"scorer returned {type(out).__name__}; want a number, bool or ScoreResult"
        )


def scorer_from_function(
    fn: ScoreFunction, *, name: str | None = None, version: str = "1", threshold: float | None = None
) -> FunctionScorer:
    """An evaluator named ``name`` (default: the function's name) around ``fn``."""
    label = name or str(getattr(fn, "__name__", "custom"))
    return FunctionScorer(fn, name=label, version=version, threshold=threshold)
