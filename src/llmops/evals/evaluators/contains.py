"""Substring checks: the output contains any (or all) of the given values, or the expected output."""

from __future__ import annotations

from typing import Any, Literal

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer, normalise
from llmops.evals.models import EvalCase, ScoreResult


class Contains(Scorer):
    name = "contains"
    version = "1"
    kind = "deterministic"
    description = "1 when the output contains the value(s) (mode any or all); default value: the expected output."
    params = {
        "value": "a string or a list of strings to look for (default: the case's expected output)",
        "mode": "'any' (default) or 'all' of the values must appear",
        "case_sensitive": "compare case (default false)",
        "negate": "pass when the value(s) do NOT appear (default false)",
    }

    def __init__(
        self, *, values: list[str] | None, mode: Literal["any", "all"], case_sensitive: bool, negate: bool, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.values, self.mode, self.case_sensitive, self.negate = values, mode, case_sensitive, negate

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> Contains:
        raw = p.raw("value")
        if raw is None:
            values = None
        elif isinstance(raw, str):
            values = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(v, str) for v in raw):
            values = list(raw)
        else:
            raise InvalidInputError("scorer 'contains': 'value' must be a string or a list of strings", param="value")
        mode = p.text("mode", "any")
        if mode not in ("any", "all"):
            raise InvalidInputError("scorer 'contains': 'mode' must be 'any' or 'all'", param="mode")
        return cls(
            values=values,
            mode=mode,  # type: ignore[arg-type]
            case_sensitive=p.flag("case_sensitive", False),
            negate=p.flag("negate", False),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        values = self.values if self.values is not None else ([case.expected] if case.expected is not None else None)
        if not values:
            return self.error("scorer 'contains' needs a 'value' or an expected output")
        text = normalise(case.output, case_sensitive=self.case_sensitive)
        found = [v for v in values if normalise(v, case_sensitive=self.case_sensitive) in text]
        hit = bool(found) if self.mode == "any" else len(found) == len(values)
        ok = hit != self.negate
        missing = [v for v in values if v not in found]
        reason = f"found {found!r}" + (f", missing {missing!r}" if missing else "")
        return self.boolean(ok, reason, details={"found": found, "missing": missing})
