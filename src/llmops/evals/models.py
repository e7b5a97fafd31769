"""Evaluation data shared by datasets, the experiment runner, scorers, review queues and online rules.

No framework imports. The scorer contract: an :class:`Evaluator` has a unique ``name``, a ``version`` (bumped
whenever its behaviour changes: experiment fingerprints pin it) and one ``score`` coroutine that turns an
:class:`EvalCase` into a :class:`ScoreResult`. Sync scorers wrap their blocking work with ``asyncio.to_thread``
themselves. A scorer that cannot judge a case (garbage from a judge, a missing reference) returns a result with
``error`` set rather than raising; the runner records it per item and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ScoreDataType = Literal["numeric", "boolean", "categorical"]


@dataclass(frozen=True)
class EvalCase:
    """One thing to score: what went in, what came out, what was expected, the retrieved contexts."""

    input: Any  # text, chat messages (list of {role, content}) or a variables mapping
    output: str
    expected: str | None = None
    contexts: Sequence[str] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    """A scorer's verdict. ``value`` is in [0, 1] for numeric scores unless the scorer documents otherwise;
    ``passed`` is the scorer's own threshold decision when it has one."""

    name: str
    value: float | None
    reason: str = ""
    passed: bool | None = None
    label: str | None = None  # categorical scores (e.g. "toxic"), judges' verdicts
    data_type: ScoreDataType = "numeric"
    error: str | None = None  # set when the scorer could not judge this case; value is then None
    cost_usd: float = 0.0  # what judging cost (LLM judges)
    trace_id: str | None = None  # the judge's own traced call, when there is one
    details: Mapping[str, Any] = field(default_factory=dict)  # e.g. per-claim verdicts


@runtime_checkable
class Evaluator(Protocol):
    name: str
    version: str

    async def score(self, case: EvalCase) -> ScoreResult: ...
