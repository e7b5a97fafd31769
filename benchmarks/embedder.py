"""The local embedder (all-MiniLM-L6-v2 on onnxruntime): how far it goes on this CPU (figures in docs/benchmarks.md,
section "RAG").

1. Model throughput, tokens/s, for inputs of exactly 128 and 256 tokens (windows of real text from docs/ and
   examples/corpus, all tokens real: no padding) at batch sizes 1/8/32/64, for each session variant:
   - ``packaged``: the packaged graph with the options the embedder used before (2 intra-op threads, 1 inter-op);
   - ``packaged+opts``: the same graph with the session options tried here (ORT_ENABLE_ALL, sequential,
     memory arena, spinning on);
   - ``packaged+nospin``: as above with ``session.intra_op.allow_spinning`` off;
   - ``fused``: the graph rewritten by ``_onnx_graph.fuse_minilm`` (Attention + Gelu contrib operators) with
     the same options: what the embedder runs now;
   - ``fused+int8``: ``fused`` with the projections in int8 arithmetic (``DynamicQuantizeMatMul``);
   - ``fused 2x1``: two sessions of one thread each, each running half of the batch in parallel.
   Each variant runs in its own process (onnxruntime's memory arena keeps the largest buffers: several GB
   for all variants in one process), round-robin, ``--rounds`` times; the best round is kept (the machine is
   shared: the best round is the least disturbed one); ratios are against ``packaged`` in the same run.
2. Equivalence: cosine of every variant's sentence vectors to the packaged graph's, on real sentences and
   chunks (docs/ and examples/corpus), through the embedder's own pooling.
3. Session load time of each graph (the fused graph is rewritten in-process at first use) and peak RSS.
4. The embedder itself (``OnnxEmbedder.embed``) on all real chunks in one call: tokens/s end to end.
5. ``--paired``: packaged and fused sessions alternated call by call in one process, median of the per-pair
   speed ratios (robust on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import save  # noqa: E402

from llmops.gateway.providers import _onnx_graph  # noqa: E402
from llmops.gateway.providers.embed import MAX_TOKENS, OnnxEmbedder, model_path, tokenizer_path  # noqa: E402
from llmops.rag.chunking import chunk_document  # noqa: E402
from llmops.rag.loaders import parse_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def real_texts() -> tuple[list[str], list[str]]:
    """Sentences and 800/100 chunks of the project's own prose (docs/ and the example corpus)."""
    sentences: list[str] = []
    chunks: list[str] = []
    for path in sorted((ROOT / "examples" / "corpus").rglob("*.md")) + sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)) if 20 <= len(s) <= 400]
        parsed = parse_text(text, "markdown", source=path.name)
        for piece in chunk_document(parsed, size=800, overlap=100):
            body = parsed.text[piece.start : piece.end]
            chunks.append(f"{piece.heading}\n{body}" if piece.heading else body)
    return sentences, chunks


def _session(model: bytes, *, threads: int = 2, tuned: bool = True, spinning: bool = True) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if tuned:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.enable_cpu_mem_arena = True
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class _Pair:
    """Two one-thread sessions, each running half of the batch (inter-request parallelism)."""

    def __init__(self, model: bytes) -> None:
        self.sessions = [_session(model, threads=1), _session(model, threads=1)]
        self.pool = ThreadPoolExecutor(2)

    def run(self, _: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(feed["input_ids"])
        if n < 2:
            return list(self.sessions[0].run(None, feed))
        halves = [{k: v[: n // 2] for k, v in feed.items()}, {k: v[n // 2 :] for k, v in feed.items()}]
        parts = list(self.pool.map(lambda p: p[0].run(None, p[1])[0], zip(self.sessions, halves, strict=True)))
        return [np.concatenate(parts)]


def _windows(ids: list[int], length: int, count: int) -> np.ndarray:
    """``count`` windows of ``length`` real tokens ([CLS] ... [SEP]) cut from one long token stream."""
    body = length - 2
    rows = [[101, *ids[(i * body) % (len(ids) - body) :][:body], 102] for i in range(count)]
    return np.array(rows, dtype=np.int64)


def _throughput(run: Any, ids: np.ndarray, batch: int, min_tokens: int) -> float:
    feed = {"input_ids": ids[:batch], "attention_mask": np.ones_like(ids[:batch])}
    feed["token_type_ids"] = np.zeros_like(ids[:batch])
    run(None, feed)  # warm-up for this shape
    reps = max(2, min_tokens // ids[:batch].size)
    t0 = time.perf_counter()
    for _ in range(reps):
        run(None, feed)
    return reps * ids[:batch].size / (time.perf_counter() - t0)


def _vectors(session: Any, tok: Any, texts: list[str]) -> np.ndarray:
    out = []
    for i in range(0, len(texts), 32):
        enc = tok.encode_batch(texts[i : i + 32])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / m.sum(axis=1)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out)


def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name, not a secret
    return tok


def _build(name: str) -> tuple[Any, float]:
    packaged = model_path().read_bytes()
    t = time.perf_counter()
    if name == "packaged":
        variant: Any = _session(packaged, tuned=False)
    elif name == "packaged+opts":
        variant = _session(packaged)
    elif name == "packaged+nospin":
        variant = _session(packaged, spinning=False)
    elif name == "fused":
        variant = _session(_onnx_graph.fuse_minilm(packaged))
    elif name == "fused+int8":
        variant = _session(_onnx_graph.fuse_minilm(packaged, quantize=True))
    else:
        variant = _Pair(_onnx_graph.fuse_minilm(packaged))
    return variant, time.perf_counter() - t


def _child(name: str, vectors_out: Path | None, min_tokens: int, n_texts: int) -> dict[str, Any]:
    """One variant in its own process (bounded memory: onnxruntime's arena keeps its largest buffers)."""
    tok = _tokenizer()
    variant, load_s = _build(name)
    sentences, chunks = real_texts()
    if vectors_out is not None:
        texts = sorted(sentences[:n_texts] + chunks[:n_texts], key=len)
        np.save(vectors_out, _vectors(variant, tok, texts))
    stream = [i for e in tok.encode_batch(chunks) for i in e.ids if i not in (0, 101, 102)]
    out: dict[str, Any] = {"load_s": load_s}
    for length in (128, 256):
        ids = _windows(stream, length, 64)
        for batch in (1, 8, 32, 64):
            out[f"L{length} B{batch}"] = _throughput(variant.run, ids, batch, min_tokens)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _paired() -> dict[str, Any]:
    """Packaged and fused sessions alternated call by call in one process: the median of the per-pair time
    ratios is robust to the load of a shared machine (both sides of a pair see the same load)."""
    packaged = model_path().read_bytes()
    sessions = {"packaged": _session(packaged, tuned=False), "fused": _session(_onnx_graph.fuse_minilm(packaged))}
    tok = _tokenizer()
    _, chunks = real_texts()
    stream = [i for e in tok.encode_batch(chunks) for i in e.ids if i not in (0, 101, 102)]
    out: dict[str, Any] = {}
    for length, batch, pairs in ((128, 32, 12), (256, 32, 8), (128, 1, 40)):
        ids = _windows(stream, length, batch)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        for s in sessions.values():
            s.run(None, feed)
        ratios, best = [], dict.fromkeys(sessions, 0.0)
        for _ in range(pairs):
            took = {}
            for name, s in sessions.items():
                t = time.perf_counter()
                s.run(None, feed)
                took[name] = time.perf_counter() - t
                best[name] = max(best[name], ids.size / took[name])
            ratios.append(took["packaged"] / took["fused"])
        out[f"L{length} B{batch}"] = {
            "fused_speedup_median": float(np.median(ratios)),
            "iqr": [float(np.quantile(ratios, 0.25)), float(np.quantile(ratios, 0.75))],
            "best_tokens_per_s": best,
        }
    return out


VARIANTS = ("packaged", "packaged+opts", "packaged+nospin", "fused", "fused+int8", "fused 2x1")
EQUIVALENCE = ("packaged", "fused", "fused+int8")  # the others run one of these graphs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-tokens", type=int, default=4096, help="tokens per measurement")
    ap.add_argument("--texts", type=int, default=200, help="sentences and chunks each for the equivalence check")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--vectors", help=argparse.SUPPRESS)
    ap.add_argument("--paired", action="store_true", help="only the paired packaged/fused comparison")
    args, _ = ap.parse_known_args()
    if args.paired:
        save("embedder_paired", _paired())
        return
    if args.child:
        vectors = Path(args.vectors) if args.vectors else None
        print(json.dumps(_child(args.child, vectors, args.min_tokens, args.texts)))
        return
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # round-robin over variants: each one sees the same machine load
            for name in VARIANTS:
                cmd = [sys.executable, __file__, "--child", name, "--min-tokens", str(args.min_tokens)]
                if r == 0 and name in EQUIVALENCE:
                    cmd += ["--vectors", f"{tmp}/{VARIANTS.index(name)}.npy", "--texts", str(args.texts)]
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)  # noqa: S603
                prev = best.setdefault(name, {})
                for k, v in res.items():
                    prev[k] = min(prev.get(k, v), v) if k in ("load_s", "peak_rss_mb") else max(prev.get(k, 0.0), v)
        ref = np.load(f"{tmp}/0.npy")
        equivalence = {}
        for name in EQUIVALENCE:
            i = VARIANTS.index(name)
            cos = (np.load(f"{tmp}/{i}.npy") * ref).sum(axis=1)
            equivalence[name] = {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "texts": len(cos)}
    base = best["packaged"]
    ratios = {name: {k: v / base[k] for k, v in cells.items() if k.startswith("L")} for name, cells in best.items()}
    _, chunks = real_texts()
    embedder = OnnxEmbedder(threads=2)
    embedder.embed(["warm up"])
    t = time.perf_counter()
    _, tokens = embedder.embed(chunks)
    embed_s = time.perf_counter() - t
    save(
        "embedder",
        {
            "tokens_per_s": best,
            "ratio_vs_packaged": ratios,
            "equivalence": equivalence,
            "embedder_on_chunks": {"chunks": len(chunks), "tokens": tokens, "tokens_per_s": tokens / embed_s},
        },
    )


if __name__ == "__main__":
    main()
