"""Regular-expression match on the output (search by default, ``full`` for a whole-output match)."""

from __future__ import annotations

import re
from typing import Any

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.models import EvalCase, ScoreResult

MAX_PATTERN = 2000


class RegexMatch(Scorer):
    name = "regex"
    version = "1"
    kind = "deterministic"
    description = "1 when the pattern matches the output (re.search; full=true for re.fullmatch)."
    params = {
        "pattern": "Python regular expression (required)",
        "full": "the whole output must match (default false)",
        "ignore_case": "case-insensitive (default false)",
        "negate": "pass when the pattern does NOT match (default false)",
    }

    def __init__(self, *, pattern: re.Pattern[str], full: bool, negate: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.pattern, self.full, self.negate = pattern, full, negate

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> RegexMatch:
        source = p.required_str("pattern")
        if len(source) > MAX_PATTERN:
            raise InvalidInputError(f"scorer 'regex': pattern longer than {MAX_PATTERN} characters", param="pattern")
        try:
            pattern = re.compile(source, re.IGNORECASE if p.flag("ignore_case", False) else 0)
        except re.error as exc:
            raise InvalidInputError(f"scorer 'regex': invalid pattern {source!r}: {exc}", param="pattern") from exc
        return cls(
            pattern=pattern,
            full=p.flag("full", False),
            negate=p.flag("negate", False),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        match = (self.pattern.fullmatch if self.full else self.pattern.search)(case.output)
        ok = (match is not None) != self.negate
        reason = f"pattern {self.pattern.pattern!r} " + ("matched" if match else "did not match")
        return self.boolean(ok, reason, details={"match": match.group(0) if match else None})
