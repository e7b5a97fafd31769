"""Corpus-health fixtures: the shipped corpus (examples/corpus), its labels, and the real local models
(embedder and NLI, loaded once per session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmops.classifiers.nli import NliModel
from llmops.gateway import OnnxEmbedder

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(threads=1)


@pytest.fixture(scope="session")
def embed(embedder: OnnxEmbedder) -> Any:
    def run(texts: list[str]) -> np.ndarray:
        return embedder.embed(texts)[0]

    return run


@pytest.fixture(scope="session")
def nli() -> NliModel:
    return NliModel(threads=1)


def labels(root: Path = CORPUS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "labels.json").read_text())
    return data
