"""Scorer benchmark: NLI scorer throughput vs the plain onnxruntime call, and local scorers' measured quality.

Throughput (same run, same pairs): the faithfulness set's (reference, answer) pairs are scored
1. by the plain onnxruntime call, one pair per ``session.run`` (the baseline: how a scorer would call the model
   without batching) and, for reference, the plain call on batches of 16;
2. by the ``factual_consistency`` scorer on the same items, all submitted concurrently as the experiment runner
   does (embeddings, both NLI directions, cross-case NLI batching included).
Throughput is NLI pairs per second: for the scorer, the pairs the model actually answered (a one-sentence claim
against a one-sentence reference is two pairs: both directions). Quality: precision/recall of every local
scorer on its labelled set (``llmops.evals.evaluators.quality``). Writes .bench/scorers.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS  # noqa: E402

from llmops.classifiers import NliModel  # noqa: E402
from llmops.evals import EvalCase  # noqa: E402
from llmops.evals.evaluators import EvaluatorDeps, create_evaluator  # noqa: E402
from llmops.evals.evaluators.quality import (  # noqa: E402
    load_labelled,
    measure_faithfulness,
    measure_semantic,
    measure_toxicity,
)


def plain_onnx(nli: NliModel, pairs: list[tuple[str, str]], batch: int) -> float:
    nli.contradiction(pairs[:2])  # load + warm up
    session, tokenizer = nli._session, nli._tokenizer  # noqa: SLF001 - the raw onnxruntime call is the baseline
    start = time.perf_counter()
    for i in range(0, len(pairs), batch):
        enc = tokenizer.encode_batch(pairs[i : i + batch])  # type: ignore[attr-defined]
        ids = np.asarray([e.ids for e in enc], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
        session.run(["logits"], {"input_ids": ids, "attention_mask": mask})  # type: ignore[attr-defined]
    return len(pairs) / (time.perf_counter() - start)


async def scorer_rate(deps: EvaluatorDeps, items: list[dict[str, str]], counter: dict[str, int]) -> float:
    scorer = create_evaluator("factual_consistency", deps)
    cases = [EvalCase(input="", output=i["answer"], expected=i["reference"]) for i in items]
    await scorer.score(cases[0])  # warm up
    counter["pairs"] = 0
    start = time.perf_counter()
    await asyncio.gather(*(scorer.score(c) for c in cases))
    return counter["pairs"] / (time.perf_counter() - start)


class CountingNli(NliModel):
    def __init__(self, counter: dict[str, int]) -> None:
        super().__init__(threads=2)
        self.counter = counter

    def contradiction(self, pairs):  # type: ignore[no-untyped-def]
        self.counter["pairs"] += len(pairs)
        return super().contradiction(pairs)


def main() -> None:
    items = load_labelled("faithfulness")
    pairs = [(i["reference"], i["answer"]) for i in items]
    pairs = pairs + [(b, a) for a, b in pairs]  # both directions, as the scorer asks
    counter = {"pairs": 0}
    deps = EvaluatorDeps(nli=CountingNli(counter))
    plain = NliModel(threads=2)
    out: dict[str, object] = {}
    out["plain_onnx_per_pair_pairs_per_s"] = round(plain_onnx(plain, pairs, 1), 1)
    out["plain_onnx_batch16_pairs_per_s"] = round(plain_onnx(plain, pairs, 16), 1)
    out["scorer_pairs_per_s"] = round(asyncio.run(scorer_rate(deps, items, counter)), 1)
    out["scorer_items"] = len(items)
    out["ratio_scorer_vs_plain_per_pair"] = round(out["scorer_pairs_per_s"] / out["plain_onnx_per_pair_pairs_per_s"], 2)  # type: ignore[operator]
    out["ratio_scorer_vs_plain_batch16"] = round(out["scorer_pairs_per_s"] / out["plain_onnx_batch16_pairs_per_s"], 2)  # type: ignore[operator]
    local = EvaluatorDeps()
    out["quality"] = {
        "factual_consistency": asyncio.run(measure_faithfulness(local)).summary(),
        "semantic_similarity@0.75": asyncio.run(measure_semantic(local)).summary(),
        "toxicity@0.5": asyncio.run(measure_toxicity(local)).summary(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scorers.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
