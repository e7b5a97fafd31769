"""The local embedder runs the packaged MiniLM graph rewritten with fused Attention and Gelu operators: the
vectors are the packaged graph's (cosine >= 0.999 on the project's own sentences and chunks), batches respect
their size and token budgets, and a graph the rewrite does not recognise is refused, not half-rewritten."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.gateway.providers._onnx_graph import GraphMismatch, fuse_minilm
from llmops.gateway.providers.embed import BATCH_TOKENS, MAX_BATCH, MAX_TOKENS, OnnxEmbedder, _batches, model_path
from llmops.rag.chunking import chunk_document
from llmops.rag.loaders import parse_text

ROOT = Path(__file__).resolve().parents[2]


def _real_texts() -> list[str]:
    """Sentences and 800/100 chunks of real prose: the shipped example corpus and the docs pages."""
    sentences: list[str] = []
    chunks: list[str] = []
    for path in sorted((ROOT / "examples" / "corpus" / "docs").glob("*.md")) + [ROOT / "docs" / "rag.md"]:
        text = path.read_text()
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)) if 20 <= len(s) <= 400]
        parsed = parse_text(text, "markdown", source=path.name)
        chunks += [parsed.text[p.start : p.end] for p in chunk_document(parsed, size=800, overlap=100)]
    return sentences[:150] + chunks[:50] + ["a", "refund " * 400]  # one-token and truncated extremes


@pytest.fixture(scope="module")
def embedders() -> tuple[OnnxEmbedder, OnnxEmbedder]:
    return OnnxEmbedder(threads=1), OnnxEmbedder(threads=1, fused=False)


def test_fused_graph_gives_the_packaged_vectors(embedders: tuple[OnnxEmbedder, OnnxEmbedder]) -> None:
    """Same network, fewer operators: every vector within cosine 0.999 of the packaged graph's, same token count."""
    fused, packaged = embedders
    texts = _real_texts()
    a, tokens_a = fused.embed(texts)
    b, tokens_b = packaged.embed(texts)
    assert fused.graph == "fused" and packaged.graph == "packaged"
    assert len(texts) > 150 and a.shape == b.shape == (len(texts), 384)
    assert float((a * b).sum(axis=1).min()) >= 0.999
    assert tokens_a == tokens_b
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_tokens_are_counted_after_truncation(embedders: tuple[OnnxEmbedder, OnnxEmbedder]) -> None:
    """A text longer than the model's window counts MAX_TOKENS tokens; an empty list embeds to nothing."""
    fused, _ = embedders
    _, tokens = fused.embed(["refund " * 400])
    assert tokens == MAX_TOKENS
    vectors, none = fused.embed([])
    assert vectors.shape == (0, 384) and none == 0


def test_the_rewrite_refuses_an_unexpected_graph() -> None:
    """Garbage and an already fused graph (no separate Q/K/V projections left) raise GraphMismatch."""
    with pytest.raises(GraphMismatch):
        fuse_minilm(b"")
    fused = fuse_minilm(model_path().read_bytes())
    with pytest.raises(GraphMismatch):
        fuse_minilm(fused)


@given(st.lists(st.integers(min_value=1, max_value=MAX_TOKENS), max_size=300))
def test_batches_cover_sorted_inputs_within_budgets(lengths: list[int]) -> None:
    """Contiguous ranges over the sorted lengths, each within MAX_BATCH inputs and BATCH_TOKENS padded tokens."""
    lengths.sort()
    ranges = _batches(lengths)
    assert [i for s, e in ranges for i in range(s, e)] == list(range(len(lengths)))
    for start, end in ranges:
        assert 0 < end - start <= MAX_BATCH
        assert (end - start) * lengths[end - 1] <= BATCH_TOKENS
