"""Claim-by-claim support of an answer by reference texts, from a weak NLI model and embeddings together.

For every claim (sentence of the answer): the premise sentences most similar to it (MiniLM cosine) are its
evidence; the NLI model scores P(contradiction) in both directions for the best sentence and for the window of
the two best (a claim may draw on two sentences), and the *smaller* direction is kept (the model's false
contradictions are mostly one-directional). Numbers in the claim that appear in none of its evidence are a
third signal. Verdicts:

- ``contradicted``: the evidence is on topic (cosine >= ``related``) and P(contradiction) >= ``contradiction``,
  or a number mismatches and P(contradiction) >= ``contradiction_with_number``;
- ``supported``: cosine >= ``support`` and not contradicted and no unsupported number;
- ``unsupported``: otherwise (nothing in the references says so).

The NLI model is never trusted alone: a contradiction needs on-topic evidence, support needs similarity. All
distinct pairs of one case go to the model in one batch. The thresholds were set from the model's behaviour on
hand-made pairs, then measured on ``evals/data/faithfulness.jsonl`` (docs/scorers.md).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

from llmops.evals.evaluators._text import sentences
from llmops.evals.evaluators.registry import Embedder

Verdict = Literal["supported", "contradicted", "unsupported"]
_NUM = re.compile(r"\d+(?:[.,]\d+)*")


class Nli(Protocol):
    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


@dataclass(frozen=True)
class Thresholds:
    support: float = 0.62
    related: float = 0.45
    contradiction: float = 0.97
    contradiction_with_number: float = 0.5


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    verdict: Verdict
    similarity: float
    contradiction: float
    evidence: str
    missing_numbers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["similarity"] = round(self.similarity, 4)
        out["contradiction"] = round(self.contradiction, 4)
        out["missing_numbers"] = list(self.missing_numbers)
        return out


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in _NUM.finditer(text)}


@dataclass(frozen=True)
class _Plan:
    claims: Sequence[str]
    rows: list[tuple[int, str, float, tuple[str, ...]]]  # claim index, best evidence, cosine, missing numbers
    pairs: list[tuple[str, str]]  # 4 per claim: best both ways, window both ways


def check_claims(
    claims: Sequence[str], premises: Sequence[str], embedder: Embedder, nli: Nli, th: Thresholds = Thresholds()
) -> list[ClaimVerdict]:
    """One verdict per claim against the premise texts (blocking: call it off the event loop)."""
    plan = plan_claims(claims, premises, embedder)
    if isinstance(plan, list):
        return plan
    unique = list(dict.fromkeys(plan.pairs))
    return decide(plan, dict(zip(unique, nli.contradiction(unique), strict=True)), th)


async def acheck_claims(
    claims: Sequence[str], premises: Sequence[str], embedder: Embedder, nli: Nli, th: Thresholds = Thresholds()
) -> list[ClaimVerdict]:
    """:func:`check_claims` for async callers: embeddings in a thread, NLI pairs batched across callers."""
    from llmops.evals.evaluators._batching import batcher_for

    plan = await asyncio.to_thread(plan_claims, claims, premises, embedder)
    if isinstance(plan, list):
        return plan
    unique = list(dict.fromkeys(plan.pairs))  # one-sentence evidence makes best == window: score each pair once
    probs = await batcher_for(nli).contradiction(unique)
    return decide(plan, dict(zip(unique, probs, strict=True)), th)


def plan_claims(claims: Sequence[str], premises: Sequence[str], embedder: Embedder) -> _Plan | list[ClaimVerdict]:
    """The evidence and NLI pairs of every claim (or the final verdicts when there is nothing to ask)."""
    evidence = [s for p in premises for s in (sentences(p) or [p.strip()]) if s]
    if not claims:
        return []
    if not evidence:
        return [ClaimVerdict(c, "unsupported", 0.0, 0.0, "") for c in claims]
    vectors, _ = embedder.embed([*claims, *evidence])
    vectors = np.asarray(vectors)
    sims = vectors[: len(claims)] @ vectors[len(claims) :].T
    plans: list[tuple[int, str, float, tuple[str, ...]]] = []
    pairs: list[tuple[str, str]] = []
    for i, claim in enumerate(claims):
        order = np.argsort(-sims[i])[:2]
        best, window = evidence[order[0]], " ".join(evidence[j] for j in sorted(order))
        top3 = " ".join(evidence[j] for j in np.argsort(-sims[i])[:3])
        missing = tuple(sorted(_numbers(claim) - _numbers(top3)))
        plans.append((i, best, float(sims[i, order[0]]), missing))
        pairs += [(best, claim), (claim, best), (window, claim), (claim, window)]
    return _Plan(claims, plans, pairs)


def decide(plan: _Plan, scored: dict[tuple[str, str], float], th: Thresholds) -> list[ClaimVerdict]:
    probs = [scored[pair] for pair in plan.pairs]
    claims = plan.claims
    out = []
    for (i, best, sim, missing), k in zip(plan.rows, range(0, len(probs), 4), strict=True):
        p = max(min(probs[k], probs[k + 1]), min(probs[k + 2], probs[k + 3]))
        on_topic = sim >= th.related
        if on_topic and (p >= th.contradiction or (missing and p >= th.contradiction_with_number)):
            verdict: Verdict = "contradicted"
        elif sim >= th.support and not missing:
            verdict = "supported"
        else:
            verdict = "unsupported"
        out.append(ClaimVerdict(claims[i], verdict, sim, p, best, missing))
    return out
