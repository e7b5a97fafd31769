"""Evaluation: datasets, experiments, scorers (``evaluators/``, one per module), comparison, CI gate, human
review, judge calibration, online rules, promotion gate.

May import gateway, prompts, tracing, projects, classifiers and core; never web, app or cli.
"""

from llmops.evals.models import EvalCase, Evaluator, ScoreResult

__all__ = ["EvalCase", "Evaluator", "ScoreResult"]
