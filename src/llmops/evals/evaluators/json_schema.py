"""The output is JSON that validates against a JSON Schema (``jsonschema``, the draft the schema declares)."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators.json_valid import parse_json_output
from llmops.evals.models import EvalCase, ScoreResult

MAX_ERRORS = 10


class JsonSchemaMatch(Scorer):
    name = "json_schema"
    version = "1"
    kind = "deterministic"
    description = "1 when the output is JSON valid against the schema; the violations are listed in details."
    params = {
        "schema": "the JSON Schema (a mapping; required)",
        "strict": "reject a ```json fenced block (default false)",
    }

    def __init__(self, *, schema: dict[str, Any], strict: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.strict = strict
        self._validator = jsonschema.validators.validator_for(schema)(schema)

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> JsonSchemaMatch:
        schema = p.raw("schema")
        if not isinstance(schema, dict):
            raise InvalidInputError("scorer 'json_schema' needs a 'schema' mapping", param="schema")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise InvalidInputError(f"scorer 'json_schema': invalid schema: {exc.message}", param="schema") from exc
        return cls(schema=schema, strict=p.flag("strict", False), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        value, problem = parse_json_output(case.output, allow_fence=not self.strict)
        if problem is not None:
            return self.boolean(False, problem)
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))[:MAX_ERRORS]
        found = [{"path": "/".join(str(x) for x in e.absolute_path), "message": e.message} for e in errors]
        reason = "valid against the schema" if not found else f"{found[0]['path'] or '(root)'}: {found[0]['message']}"
        return self.boolean(not found, reason, details={"errors": found})
