"""LLM-as-judge: a rubric (built-in or custom, G-Eval style) scored by a model through the gateway.

The judge asks for ``{"reasoning": str, "score": int}`` with ``response_format`` ``json_schema`` (strict). A reply
that is not such JSON is first repaired locally (a fenced block or the first ``{...}`` in the text); if that
fails the judge tells the model what was wrong and asks again, up to ``max_retries`` times. When every attempt
fails — garbage, an upstream error, a timeout — the result carries ``error`` (never an exception), with the
cost spent so far. Every call goes through :class:`~llmops.gateway.GatewayService`, so it is traced and costed
like any call; all attempts of one judgment share one trace, tagged ``llmops-judge`` and ``judge:<rubric>``
(span attributes ``llmops.judge.*``), whose id is the result's ``trace_id``.

The value is the score mapped to [0, 1] (``(score - low) / (high - low)``); ``label`` is the raw score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from llmops.core.errors import LlmopsError
from llmops.core.ids import new_trace_id
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._rubrics import Rubric, rubric_from
from llmops.evals.evaluators._text import question_of
from llmops.evals.evaluators.registry import EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult
from llmops.gateway import CallContext

JUDGE_TAG = "llmops-judge"
MAX_FIELD_CHARS = 8000
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def verdict_schema(rubric: Rubric) -> dict[str, Any]:
    low, high = rubric.scale
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "score": {"type": "integer", "minimum": low, "maximum": high},
        },
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    }


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + " …[truncated]"


def judge_messages(rubric: Rubric, case: EvalCase) -> list[dict[str, str]]:
    low, high = rubric.scale
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(rubric.steps, 1)) or "1. Apply the criteria."
    system = (
        "You are an impartial evaluator. Score the ANSWER against the criteria below.\n\n"
        f"Criteria: {rubric.criteria}\n\nEvaluation steps:\n{steps}\n\n"
        f"Give an integer score from {low} (worst) to {high} (best). Reply with only a JSON object "
        '{"reasoning": "<one short paragraph>", "score": <integer>}.'
    )
    parts = [f"QUESTION:\n{_clip(question_of(case.input))}", f"ANSWER:\n{_clip(case.output)}"]
    if rubric.uses_expected and case.expected:
        parts.append(f"REFERENCE ANSWER:\n{_clip(case.expected)}")
    if case.contexts:
        parts.append("CONTEXTS:\n" + "\n---\n".join(_clip(c) for c in case.contexts[:10]))
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_verdict(text: str, schema: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(verdict, None), or (None, what is wrong); tries the text, a fenced block, the outermost braces."""
    candidates = [text]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    if m := _OBJECT.search(text):
        candidates.append(m.group(0))
    problem = "the reply is not a JSON object"
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("score"), float) and value["score"].is_integer():
            value["score"] = int(value["score"])
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            problem = f"the JSON does not match the schema: {exc.message}"
            continue
        return value, None
    return None, problem


def _content(body: Any) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


class LlmJudge(Scorer):
    name = "judge"
    version = "1"
    kind = "llm_judge"
    description = (
        "LLM-as-judge through the gateway: built-in rubric (relevance, helpfulness, factual_accuracy, "
        "style_tone) or a custom G-Eval rubric; JSON-constrained, repaired and retried, traced and costed."
    )
    params = {
        "rubric": "a built-in rubric name or {criteria, steps, scale: [low, high], name} (required)",
        "model": "gateway model alias of the judge (default: the configured judge model)",
        "max_retries": "asks again after an unusable reply, at most this many times (default 2)",
        "temperature": "sampling temperature of the judge (default 0)",
    }

    def __init__(
        self, *, deps: EvaluatorDeps, rubric: Rubric, model: str, max_retries: int, temperature: float, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._deps, self.rubric, self.model = deps, rubric, model
        self.max_retries, self.temperature = max_retries, temperature
        self._schema = verdict_schema(rubric)

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> LlmJudge:
        from llmops.core.errors import InvalidInputError

        rubric = rubric_from(p.raw("rubric") if p.raw("rubric") is not None else "")
        model = p.text("model") or deps.judge_model
        if not model:
            raise InvalidInputError("a judge needs a 'model' (or a configured default judge model)", param="model")
        return cls(
            deps=deps,
            rubric=rubric,
            model=model,
            max_retries=p.integer("max_retries", 2, lo=0, hi=5),
            temperature=p.number("temperature", 0.0, lo=0.0, hi=2.0),
            threshold=p.threshold(0.5),
            score_name=p.score_name(f"judge:{rubric.name}"),
        )

    def _context(self, trace_id: str, parent: str | None, case: EvalCase) -> CallContext:
        _, principal = self._deps.require_gateway(self.name)
        attrs: dict[str, Any] = {
            "llmops.tags": [JUDGE_TAG, f"judge:{self.rubric.name}"],
            "llmops.judge.evaluator": self.name,
            "llmops.judge.rubric": self.rubric.name,
        }
        if isinstance(case.metadata.get("trace_id"), str):
            attrs["llmops.judge.target_trace_id"] = case.metadata["trace_id"]
        return CallContext.internal(principal, trace_id=trace_id, parent_span_id=parent, attributes=attrs)

    def _request(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": self._schema, "strict": True},
            },
        }

    async def score(self, case: EvalCase) -> ScoreResult:
        try:
            gateway, _ = self._deps.require_gateway(self.name)
        except LlmopsError as exc:
            return self.error(exc.message)
        messages = judge_messages(self.rubric, case)
        trace_id, first_span, cost, problems = new_trace_id(), None, 0.0, []
        for attempt in range(self.max_retries + 1):
            ctx = self._context(trace_id, first_span, case)
            first_span = first_span or ctx.span_id
            try:
                reply = await gateway.chat(ctx, self._request(messages))
            except LlmopsError as exc:
                problems.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc.message}")
                continue
            cost += float(getattr(reply, "cost_usd", None) or 0.0)
            text = _content(getattr(reply, "body", None))
            verdict, problem = parse_verdict(text, self._schema)
            if verdict is not None:
                return self._verdict(verdict, cost, trace_id, attempt + 1)
            problems.append(f"attempt {attempt + 1}: {problem}")
            messages = [
                *messages,
                {"role": "assistant", "content": text[:2000]},
                {"role": "user", "content": f"That reply was unusable ({problem}). Reply with only the JSON object."},
            ]
        message = f"judge gave no usable verdict after {len(problems)} attempt(s): {problems[-1]}"
        return self.error(message, cost_usd=cost, trace_id=trace_id, details={"attempts": problems})

    def _verdict(self, verdict: dict[str, Any], cost: float, trace_id: str, attempts: int) -> ScoreResult:
        low, high = self.rubric.scale
        raw = int(verdict["score"])
        details = {"score": raw, "scale": [low, high], "attempts": attempts, "model": self.model}
        return self.result(
            (raw - low) / (high - low),
            str(verdict.get("reasoning", ""))[:4000],
            label=str(raw),
            cost_usd=cost,
            trace_id=trace_id,
            details=details,
        )
