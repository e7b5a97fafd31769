"""Scorers, one per module, built from specs by :mod:`~llmops.evals.evaluators.registry`.

Deterministic (exact, contains, regex, json_valid, json_schema, numeric, edit_distance, bleu, rouge), local models
(semantic_similarity with the MiniLM embedder, factual_consistency with the NLI classifier, toxicity with the
local classifier), LLM judges (``judge``: rubrics through the gateway) and RAG metrics (faithfulness,
answer_relevancy, context_precision, context_recall); user functions via ``scorer_from_function``. See
docs/scorers.md.
"""

from llmops.evals.evaluators.custom import FunctionScorer, scorer_from_function
from llmops.evals.evaluators.registry import (
    ChatGateway,
    Embedder,
    EvaluatorDeps,
    EvaluatorInfo,
    create_evaluator,
    list_evaluators,
    parse_spec,
)

__all__ = [
    "ChatGateway",
    "Embedder",
    "EvaluatorDeps",
    "EvaluatorInfo",
    "FunctionScorer",
    "create_evaluator",
    "list_evaluators",
    "parse_spec",
    "scorer_from_function",
]
