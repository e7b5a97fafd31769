"""Scorers on the real local models (MiniLM embedder, aegis NLI, toxicity heads + lexicon), and their measured
quality on the labelled sets shipped in the package (floors slightly under the figures in docs/scorers.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmops.classifiers import NliModel, ToxicityModel, lexicon_hits
from llmops.evals import EvalCase, ScoreResult
from llmops.evals.evaluators import EvaluatorDeps, create_evaluator
from llmops.evals.evaluators.quality import load_labelled, measure_faithfulness, measure_semantic, measure_toxicity


def run(deps: EvaluatorDeps, spec: Any, **case: Any) -> ScoreResult:
    return asyncio.run(create_evaluator(spec, deps).score(EvalCase(input=case.pop("input", ""), **case)))


def test_semantic_similarity_separates_paraphrases(local_deps: EvaluatorDeps) -> None:
    """A paraphrase scores above the default threshold, an unrelated answer below it."""
    para = run(
        local_deps,
        "semantic_similarity",
        output="Japan's capital city is Tokyo.",
        expected="Tokyo is the capital of Japan.",
    )
    other = run(
        local_deps,
        "semantic_similarity",
        output="The recipe needs two eggs.",
        expected="Tokyo is the capital of Japan.",
    )
    assert para.passed is True and other.passed is False and para.value > other.value  # type: ignore[operator]


def test_factual_consistency_per_claim_verdicts(local_deps: EvaluatorDeps) -> None:
    """Claims are checked one by one: supported, contradicted (a changed number) and unsupported are told apart."""
    res = run(
        local_deps,
        "factual_consistency",
        output="The Eiffel Tower was completed in 1889. It was built for the World's Fair. It is painted bright green.",
        expected="The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    )
    verdicts = [c["verdict"] for c in res.details["claims"]]
    assert verdicts[0] == "supported" and verdicts[2] != "supported"
    assert res.value == pytest.approx(verdicts.count("supported") / 3) and res.label != "consistent"
    contra = run(
        local_deps,
        "factual_consistency",
        output="The Eiffel Tower was completed in 1925.",
        expected="The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    )
    assert contra.label == "contradicted" and contra.passed is False
    assert contra.details["claims"][0]["missing_numbers"] == ["1925"]
    ok = run(
        local_deps,
        {"name": "factual_consistency", "against": "contexts"},
        output="Water boils at 100 °C at sea level.",
        contexts=["Unrelated text about trains.", "Water boils at 100 degrees Celsius at sea level."],
    )
    assert ok.label == "consistent" and ok.details["claims"][0]["evidence"].startswith("Water boils")
    assert run(local_deps, "factual_consistency", output="x y z").error is not None  # nothing to check against


def test_toxicity_categories_and_benign_lookalikes(local_deps: EvaluatorDeps) -> None:
    """Threats/insults/obscenity are flagged with their categories; 'kill the process' is not toxic."""
    threat = run(local_deps, "toxicity", output="I will find you and hurt you, you idiot.")
    assert threat.label == "toxic" and threat.passed is False
    assert {"threat", "insult"} <= set(threat.details["flagged"])
    benign = run(local_deps, "toxicity", output="How do I kill the background process before the deploy?")
    assert benign.label == "ok" and benign.passed is True and benign.value < 0.5  # type: ignore[operator]
    assert "obscene" in lexicon_hits("what the fuck")
    model = local_deps.get_toxicity()
    assert isinstance(model, ToxicityModel) and model.predict([]) == []


def test_rag_metrics(local_deps: EvaluatorDeps) -> None:
    """Faithfulness to contexts, answer relevancy (evasive answers 0), context precision (ranking) and recall."""
    contexts = [
        "The library is open from 9 am to 6 pm on weekdays.",
        "The library is closed on Sundays.",
        "Parking costs 2 euros.",
    ]
    q = "When is the library open?"
    faithful = run(
        local_deps,
        "faithfulness",
        input=q,
        output="It opens at 9 am and closes at 6 pm on weekdays.",
        contexts=contexts,
    )
    assert faithful.value == 1.0
    assert run(local_deps, "faithfulness", input=q, output="x").error is not None  # no contexts
    good = run(
        local_deps,
        "answer_relevancy",
        input=[{"role": "user", "content": q}],
        output="It is open 9 am to 6 pm on weekdays.",
    )
    off = run(local_deps, "answer_relevancy", input=q, output="Bananas are rich in potassium.")
    evasive = run(local_deps, "answer_relevancy", input=q, output="I don't know.")
    assert good.value > off.value and evasive.value == 0.0  # type: ignore[operator]
    expected = "The library opens at 9 am and closes at 6 pm on weekdays. It is closed on Sundays."
    first = run(local_deps, "context_precision", input=q, output="", expected=expected, contexts=contexts)
    last = run(local_deps, "context_precision", input=q, output="", expected=expected, contexts=contexts[::-1])
    assert first.value == 1.0 and last.value < first.value  # type: ignore[operator]
    recall = run(local_deps, "context_recall", input=q, output="", expected=expected, contexts=contexts[:1])
    assert recall.value == pytest.approx(0.5) and recall.details["claims"][1]["verdict"] != "supported"


def test_labelled_sets_are_large_enough_and_separate() -> None:
    """Each local scorer has >= 100 labelled items; the toxicity held-out set shares no text with training."""
    for name in ("faithfulness", "semantic_similarity", "toxicity_heldout"):
        assert len(load_labelled(name)) >= 100
    train = {i["text"] for i in load_labelled("toxicity_train")}
    assert not train & {i["text"] for i in load_labelled("toxicity_heldout")}


def test_measured_quality_floors(local_deps: EvaluatorDeps) -> None:
    """Precision/recall on the shipped sets stay at what docs/scorers.md publishes (small margin for noise)."""
    tox = asyncio.run(measure_toxicity(local_deps))
    assert tox.precision >= 0.9 and tox.recall >= 0.9
    sem = asyncio.run(measure_semantic(local_deps))
    assert sem.precision >= 0.95 and sem.recall >= 0.95
    faith = asyncio.run(measure_faithfulness(local_deps))
    assert faith.precision >= 0.95 and faith.recall >= 0.85


class _CountingNli(NliModel):
    """The real NLI model, counting how often and with how many pairs it is called."""

    def __init__(self) -> None:
        super().__init__(threads=2)
        self.calls: list[int] = []

    def contradiction(self, pairs):  # type: ignore[no-untyped-def]
        self.calls.append(len(pairs))
        return super().contradiction(pairs)


def test_concurrent_items_share_nli_batches(local_deps: EvaluatorDeps) -> None:
    """Items scored concurrently send their NLI pairs to the model together (fewer, larger calls), with the same
    verdicts as scoring them one at a time."""
    nli = _CountingNli()
    deps = EvaluatorDeps(embedder=local_deps.get_embedder(), nli=nli)
    items = load_labelled("faithfulness")[:12]
    cases = [EvalCase(input="", output=i["answer"], expected=i["reference"]) for i in items]
    scorer = create_evaluator("factual_consistency", deps)

    async def together() -> list[ScoreResult]:
        return list(await asyncio.gather(*(scorer.score(c) for c in cases)))

    batched = asyncio.run(together())
    assert len(nli.calls) < len(cases) and max(nli.calls) > 4
    alone = [asyncio.run(scorer.score(c)) for c in cases]
    # The packaged NLI model is dynamically quantized (one activation scale per input tensor), so a pair's
    # probability moves a little with the other pairs of its batch, and a borderline verdict may flip with what
    # ran concurrently (docs/scorers.md, "Determinism"); nearly all must agree.
    agree = sum(b.label == a.label for b, a in zip(batched, alone, strict=True))
    assert agree >= len(cases) - 2
