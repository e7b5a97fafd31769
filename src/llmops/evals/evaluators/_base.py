"""Shared plumbing for scorers: parameter parsing, text normalisation, result helpers.

Every scorer class declares ``name``, ``version``, ``kind``, ``description`` and ``params`` (parameter name ->
one-line description) and builds itself with ``from_spec(params, deps)``. Parameters are validated here so an
unknown or mistyped one is an :class:`InvalidInputError` naming it, before any item is scored.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from llmops.core.errors import InvalidInputError
from llmops.evals.models import EvalCase, ScoreResult

EvaluatorKind = Literal["deterministic", "embedding", "nli", "classifier", "llm_judge", "rag"]
T = TypeVar("T")

COMMON_PARAMS: Mapping[str, str] = {
    "score_name": "name the score is recorded under (default: the scorer's name)",
    "threshold": "pass when the value is at least this (scorers with a numeric value)",
}
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str, *, case_sensitive: bool = False, strip_punctuation: bool = False) -> str:
    """NFKC, collapsed whitespace; lower-cased unless ``case_sensitive``; punctuation removed on request."""
    out = unicodedata.normalize("NFKC", text)
    if not case_sensitive:
        out = out.casefold()
    if strip_punctuation:
        out = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in out)
    return " ".join(out.split())


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscore), the unit of BLEU and ROUGE."""
    return _WORD.findall(text.casefold())


class Params:
    """Typed access to a spec's parameters; :meth:`done` rejects the ones nobody read."""

    def __init__(self, scorer: str, raw: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
        self._scorer = scorer
        self._raw = dict(raw)
        unknown = sorted(set(self._raw) - set(allowed) - set(COMMON_PARAMS))
        if unknown:
            known = ", ".join(sorted({*allowed, *COMMON_PARAMS}))
            raise InvalidInputError(
                f"scorer {scorer!r} has no parameter {unknown[0]!r} (known: {known})", param=unknown[0]
            )

    def _get(self, key: str, kind: type[T] | tuple[type, ...], default: T | None, what: str) -> Any:
        value = self._raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise InvalidInputError(f"scorer {self._scorer!r}: {key!r} must be {what}", param=key)
        if not isinstance(value, kind):
            raise InvalidInputError(
                f"scorer {self._scorer!r}: {key!r} must be {what}, got {type(value).__name__}", param=key
            )
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value: str | None = self._get(key, str, default, "a string")
        return value

    def required_str(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise InvalidInputError(f"scorer {self._scorer!r} needs {key!r}", param=key)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value: bool = self._get(key, bool, default, "true or false")
        return value

    def number(
        self, key: str, default: float | None = None, *, lo: float | None = None, hi: float | None = None
    ) -> Any:
        value = self._get(key, (int, float), default, "a number")
        if value is None:
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InvalidInputError(f"scorer {self._scorer!r}: {key!r} must be in [{lo}, {hi}]", param=key)
        return float(value)

    def integer(self, key: str, default: int, *, lo: int = 0, hi: int = 1_000_000) -> int:
        value: int = self._get(key, int, default, "an integer")
        if not lo <= value <= hi:
            raise InvalidInputError(f"scorer {self._scorer!r}: {key!r} must be in [{lo}, {hi}]", param=key)
        return value

    def raw(self, key: str) -> Any:
        return self._raw.get(key)

    def threshold(self, default: float | None) -> float | None:
        return self.number("threshold", default, lo=0.0, hi=1.0)

    def score_name(self, default: str) -> str:
        return self.text("score_name", default) or default


class Scorer:
    """Base of the built-in scorers: carries the identity fields and the result helpers."""

    name: str = ""
    version: str = "1"
    kind: EvaluatorKind = "deterministic"
    description: str = ""
    params: Mapping[str, str] = {}

    def __init__(self, *, score_name: str | None = None, threshold: float | None = None) -> None:
        self.name = score_name or type(self).name
        self.threshold = threshold

    def result(self, value: float, reason: str = "", **kw: Any) -> ScoreResult:
        """A numeric result in [0, 1]; ``passed`` from the threshold unless given."""
        passed = kw.pop("passed", None)
        if passed is None and self.threshold is not None:
            passed = value >= self.threshold
        return ScoreResult(name=self.name, value=float(value), reason=reason, passed=passed, **kw)

    def boolean(self, ok: bool, reason: str = "", **kw: Any) -> ScoreResult:
        return ScoreResult(
            name=self.name, value=1.0 if ok else 0.0, reason=reason, passed=ok, data_type="boolean", **kw
        )

    def error(self, message: str, **kw: Any) -> ScoreResult:
        return ScoreResult(name=self.name, value=None, reason=message, error=message, **kw)

    def needs_expected(self, case: EvalCase) -> str | None:
        return None if case.expected is not None else f"scorer {self.name!r} needs an expected output"


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Blocking work (model inference) off the event loop: the one helper scorers use."""
    return await asyncio.to_thread(fn, *args)
