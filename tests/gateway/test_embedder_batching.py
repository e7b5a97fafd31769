"""The local embedder batches texts of similar length together: results come back in input order and match
embedding each text alone (real MiniLM model on onnxruntime)."""

from __future__ import annotations

import numpy as np

from llmops.gateway.providers.embed import OnnxEmbedder


def test_length_sorted_batches_keep_input_order() -> None:
    texts = [
        "refund policy " * 60,
        "pump",
        "the valve torque is 40 Nm on every model of the series",
        "office hours " * 20,
        "a",
    ]
    embedder = OnnxEmbedder()
    together, tokens = embedder.embed(texts)
    alone = np.concatenate([embedder.embed([t])[0] for t in texts])
    assert together.shape == (5, 384)
    assert np.allclose((together * alone).sum(axis=1), 1.0, atol=1e-4)
    assert tokens == sum(embedder.embed([t])[1] for t in texts)
