"""LLM judges through a real running server's GatewayService against the scripted fake upstream.

Proven: the JSON-schema-constrained request goes out; a verdict maps to [0, 1] with cost and trace id; the judge's
call is recorded as a trace tagged as a judge call; garbage is repaired locally or retried with feedback; when
every attempt fails (garbage or upstream errors) the result carries the error and nothing is raised.
"""

from __future__ import annotations

import json

import pytest

from llmops.evals import EvalCase
from llmops.evals.evaluators import EvaluatorDeps, create_evaluator
from llmops.tracing import TraceFilter
from tests.conftest import RunningServer
from tests.evals_scorers.conftest import ScriptedUpstream, judge_deps, on_server

CASE = EvalCase(input="What is the capital of France?", output="Paris.", expected="Paris")


def _verdict(score: int, reasoning: str = "fine") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


def test_judge_verdict_is_scored_costed_and_traced(judge_server: RunningServer, scripted: ScriptedUpstream) -> None:
    """A 4 on a 1-5 relevance rubric is 0.75; cost and trace id are set; the trace carries the judge tags."""
    scripted.script(_verdict(4, "answers the question"))
    judge = create_evaluator({"type": "judge", "rubric": "relevance"}, judge_deps(judge_server))
    result = on_server(judge_server, judge.score(CASE))
    assert result.error is None and result.name == "judge:relevance"
    assert result.value == pytest.approx(0.75) and result.label == "4" and result.passed is True
    assert result.reason == "answers the question" and result.cost_usd > 0 and result.trace_id
    sent = scripted.requests[-1].json
    assert sent["model"] == "judge-model" and sent["temperature"] == 0
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["score"]["maximum"] == 5
    assert "What is the capital of France?" in sent["messages"][1]["content"]
    judge_server.flush()
    principal = judge_deps(judge_server).principal
    assert principal is not None
    summary, spans = on_server(
        judge_server, judge_server.services.traces.get_trace(principal.project_id, result.trace_id)
    )
    assert "llmops-judge" in summary.tags and "judge:relevance" in summary.tags
    assert spans[0].attributes["llmops.judge.rubric"] == "relevance"
    assert spans[0].cost_usd == pytest.approx(result.cost_usd)
    page = on_server(
        judge_server,
        judge_server.services.traces.list_traces(
            principal.project_id, TraceFilter(tags=("llmops-judge",)), cursor=None, limit=10
        ),
    )
    assert result.trace_id in [t.trace_id for t in page.items]


def test_garbage_is_repaired_then_retried(judge_server: RunningServer, scripted: ScriptedUpstream) -> None:
    """A fenced verdict is repaired locally (one call); plain garbage triggers a retry that tells the model why."""
    deps = judge_deps(judge_server)
    scripted.script("Sure! ```json\n" + _verdict(5) + "\n```")
    fenced = on_server(judge_server, create_evaluator("judge:helpfulness", deps).score(CASE))
    assert fenced.value == 1.0 and fenced.details["attempts"] == 1
    scripted.reset()
    scripted.script("I think it is good", _verdict(9), _verdict(2))
    retried = on_server(judge_server, create_evaluator("judge:helpfulness", deps).score(CASE))
    assert retried.error is None and retried.value == pytest.approx(0.25) and retried.details["attempts"] == 3
    assert len(scripted.requests) == 3
    feedback = scripted.requests[1].json["messages"][-1]["content"]
    assert "unusable" in feedback and scripted.requests[1].json["messages"][-2]["content"] == "I think it is good"
    assert "maximum" in scripted.requests[2].json["messages"][-1]["content"]  # score 9 broke the schema


def test_persistent_garbage_and_upstream_errors_are_recorded_not_raised(
    judge_server: RunningServer, scripted: ScriptedUpstream
) -> None:
    """All attempts garbage -> error result with cost of the calls; upstream 500s -> error result, no exception."""
    deps = judge_deps(judge_server)
    scripted.script("nope", "still nope", '{"score": "high"}')
    result = on_server(judge_server, create_evaluator({"type": "judge", "rubric": "style_tone"}, deps).score(CASE))
    assert result.value is None and result.error and "3 attempt" in result.error
    assert result.cost_usd > 0 and len(result.details["attempts"]) == 3
    scripted.scripted.clear()
    scripted.enqueue("status=500", "status=500")
    failed = on_server(
        judge_server, create_evaluator({"type": "judge", "rubric": "relevance", "max_retries": 1}, deps).score(CASE)
    )
    assert failed.value is None and failed.error and "attempt 2" in failed.error


def test_custom_geval_rubric(judge_server: RunningServer, scripted: ScriptedUpstream) -> None:
    """A custom rubric's criteria, steps and 0-10 scale reach the prompt and the schema; 7/10 -> 0.7."""
    rubric = {"name": "conciseness", "criteria": "Is it concise?", "steps": ["Count filler words."], "scale": [0, 10]}
    scripted.script(_verdict(7))
    judge = create_evaluator({"type": "judge", "rubric": rubric, "threshold": 0.8}, judge_deps(judge_server))
    result = on_server(judge_server, judge.score(CASE))
    assert judge.name == "judge:conciseness" and result.value == pytest.approx(0.7) and result.passed is False
    system = scripted.requests[-1].json["messages"][0]["content"]
    assert "Is it concise?" in system and "1. Count filler words." in system and "from 0 (worst) to 10" in system


def test_judge_without_gateway_reports_error() -> None:
    """Built without a gateway (e.g. offline CLI), the judge returns an error result instead of raising."""
    import asyncio

    result = asyncio.run(
        create_evaluator({"type": "judge", "rubric": "relevance", "model": "m"}, EvaluatorDeps()).score(CASE)
    )
    assert result.value is None and result.error and "gateway" in result.error
