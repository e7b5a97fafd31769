"""The output parses as JSON (optionally inside a ```json fenced block)."""

from __future__ import annotations

import json
import re
from typing import Any

from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.models import EvalCase, ScoreResult

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL | re.IGNORECASE)


def parse_json_output(text: str, *, allow_fence: bool) -> tuple[Any, str | None]:
    """(value, None) when ``text`` is JSON (a fenced block is unwrapped if allowed), else (None, error)."""
    if allow_fence and (m := _FENCE.match(text)):
        text = m.group(1)
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"not valid JSON: {exc}"


class JsonValid(Scorer):
    name = "json_valid"
    version = "1"
    kind = "deterministic"
    description = "1 when the output is valid JSON (a ```json fenced block is accepted unless strict)."
    params = {"strict": "reject a fenced block: the output itself must be JSON (default false)"}

    def __init__(self, *, strict: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.strict = strict

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> JsonValid:
        return cls(strict=p.flag("strict", False), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        _, problem = parse_json_output(case.output, allow_fence=not self.strict)
        return self.boolean(problem is None, problem or "valid JSON")
