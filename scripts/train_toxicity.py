"""Train the toxicity heads (six one-vs-rest logistic regressions over MiniLM embeddings) offline.

Reads ``src/llmops/evals/data/toxicity_train.jsonl`` (``{"text", "toxic", "categories"}`` per line), writes
``src/llmops/classifiers/data/toxicity_head.npz`` and prints precision/recall on the held-out set
(``toxicity_heldout.jsonl``, never used for training). Deterministic (full-batch gradient descent, fixed
iterations). Run: ``.venv/bin/python scripts/train_toxicity.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llmops.classifiers.toxicity import CATEGORIES, LABELS, WEIGHTS, ToxicityModel
from llmops.gateway import OnnxEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "llmops" / "evals" / "data"
L2 = 1e-3
STEPS = 3000
LR = 0.5


def load(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def targets(items: list[dict[str, object]]) -> np.ndarray:
    y = np.zeros((len(items), len(LABELS)), dtype=np.float32)
    for i, it in enumerate(items):
        y[i, 0] = float(bool(it["toxic"]))
        for c in it["categories"]:  # type: ignore[attr-defined]
            y[i, 1 + CATEGORIES.index(c)] = 1.0
    return y


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced logistic regression per column, L2-regularised, full-batch gradient descent."""
    n, d = x.shape
    w = np.zeros((y.shape[1], d), dtype=np.float64)
    b = np.zeros(y.shape[1], dtype=np.float64)
    pos = y.mean(axis=0).clip(1e-3, 1 - 1e-3)
    weight = np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))  # each class contributes half
    for _ in range(STEPS):
        p = 1 / (1 + np.exp(-(x @ w.T + b)))
        g = (p - y) * weight / n
        w -= LR * (g.T @ x + L2 * w)
        b -= LR * g.sum(axis=0)
    return w.astype(np.float32), b.astype(np.float32)


def main() -> None:
    embedder = OnnxEmbedder(threads=2)
    train = load("toxicity_train.jsonl")
    x = embedder.embed([str(it["text"]) for it in train])[0]
    w, b = fit(x, targets(train))
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(WEIGHTS, w=w, b=b, labels=np.array(LABELS))
    model = ToxicityModel(embed=lambda t: embedder.embed(t)[0])
    held = load("toxicity_heldout.jsonl")
    preds = model.predict([str(it["text"]) for it in held])
    truth = [bool(it["toxic"]) for it in held]
    for name, scores in (("combined", [p.score for p in preds]), ("head only", [p.head_score for p in preds])):
        tp = sum(s >= 0.5 and t for s, t in zip(scores, truth, strict=True))
        fp = sum(s >= 0.5 and not t for s, t in zip(scores, truth, strict=True))
        fn = sum(s < 0.5 and t for s, t in zip(scores, truth, strict=True))
        print(f"{name}: precision {tp / max(tp + fp, 1):.3f} recall {tp / max(tp + fn, 1):.3f} (n={len(held)})")


if __name__ == "__main__":
    main()
