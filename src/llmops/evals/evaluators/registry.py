"""The evaluator registry: scorer specs -> scorer instances, and the catalogue of built-in scorers.

A spec is a name (``"exact"``, ``"judge:relevance"``) or a mapping with ``name`` (or ``type``) plus the scorer's
parameters (``{"name": "contains", "value": "x"}``, ``{"type": "judge", "rubric": "relevance", "model": "gpt"}``).
Every scorer also takes ``score_name`` (record the score under another name) and, when its value is numeric,
``threshold`` (``passed`` = value >= threshold). Unknown names and parameters raise :class:`InvalidInputError`
listing what is known, so a bad ``eval.yaml`` fails before the first item.

What the scorers need from the outside world comes in :class:`EvaluatorDeps`; every field is optional and the
local models are created on first use (one per ``EvaluatorDeps``), so building a deterministic scorer loads no
model. Judges need ``gateway`` and ``principal`` (the project the judge's traced call is recorded and billed to).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from llmops.core.errors import ConfigError, InvalidInputError
from llmops.evals.evaluators._base import COMMON_PARAMS, Params
from llmops.evals.models import Evaluator

if TYPE_CHECKING:
    from llmops.classifiers import NliModel, ToxicityModel
    from llmops.gateway.recording import CallContext
    from llmops.projects import Principal


class ChatGateway(Protocol):
    """What judges call: :meth:`llmops.gateway.GatewayService.chat` (returns a ``Reply`` with ``body`` and
    ``cost_usd``); the call is recorded as a trace like any gateway call."""

    async def chat(self, ctx: CallContext, raw: dict[str, Any]) -> Any: ...


class Embedder(Protocol):
    """:class:`llmops.gateway.OnnxEmbedder`: unit vectors (n, dims) and the number of tokens read."""

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]: ...


@dataclass
class EvaluatorDeps:
    gateway: ChatGateway | None = None
    principal: Principal | None = None  # whose project judge calls are recorded under
    judge_model: str | None = None  # default model for judges whose spec names none
    embedder: Embedder | None = None
    nli: NliModel | None = None
    toxicity: ToxicityModel | None = None
    threads: int = 2  # onnxruntime threads for models created lazily here
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def get_embedder(self) -> Embedder:
        with self._lock:
            if self.embedder is None:
                self.embedder = _shared("embedder", self.threads)
            return self.embedder

    def get_nli(self) -> NliModel:
        with self._lock:
            if self.nli is None:
                self.nli = _shared("nli", self.threads)
            return self.nli

    def get_toxicity(self) -> ToxicityModel:
        embedder = self.get_embedder()
        with self._lock:
            if self.toxicity is None:
                from llmops.classifiers import ToxicityModel

                self.toxicity = ToxicityModel(embed=lambda texts: embedder.embed(texts)[0])
            return self.toxicity

    def require_gateway(self, scorer: str) -> tuple[ChatGateway, Principal]:
        if self.gateway is None or self.principal is None:
            raise ConfigError(f"scorer {scorer!r} calls an LLM: it needs the gateway and a project")
        return self.gateway, self.principal


_SHARED: dict[tuple[str, int], Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared(kind: str, threads: int) -> Any:
    """One lazily built local model per (kind, threads) in the process: deps for many projects share it."""
    with _SHARED_LOCK:
        if (kind, threads) not in _SHARED:
            if kind == "embedder":
                from llmops.gateway import OnnxEmbedder

                _SHARED[kind, threads] = OnnxEmbedder(threads=threads)
            else:
                from llmops.classifiers import NliModel

                _SHARED[kind, threads] = NliModel(threads=threads)
        return _SHARED[kind, threads]


@dataclass(frozen=True)
class EvaluatorInfo:
    name: str
    version: str
    kind: str
    description: str
    params: Mapping[str, str]


# name -> "module:Class" under llmops.evals.evaluators (imported on first use)
_BUILTINS: dict[str, str] = {
    "exact": "exact:ExactMatch",
    "contains": "contains:Contains",
    "regex": "regex:RegexMatch",
    "json_valid": "json_valid:JsonValid",
    "json_schema": "json_schema:JsonSchemaMatch",
    "numeric": "numeric:NumericTolerance",
    "edit_distance": "edit_distance:EditDistance",
    "bleu": "bleu:Bleu",
    "rouge": "rouge:Rouge",
    "semantic_similarity": "semantic:SemanticSimilarity",
    "factual_consistency": "factual:FactualConsistency",
    "toxicity": "toxicity:Toxicity",
    "judge": "judge:LlmJudge",
    "faithfulness": "rag_faithfulness:Faithfulness",
    "answer_relevancy": "rag_relevancy:AnswerRelevancy",
    "context_precision": "rag_context_precision:ContextPrecision",
    "context_recall": "rag_context_recall:ContextRecall",
}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "rouge1": ("rouge", {"variant": "rouge1"}),
    "rouge2": ("rouge", {"variant": "rouge2"}),
    "rougeL": ("rouge", {"variant": "rougeL"}),
    "rouge_l": ("rouge", {"variant": "rougeL"}),
    "levenshtein": ("edit_distance", {}),
    "semantic": ("semantic_similarity", {}),
}


def _class(name: str) -> Any:
    module, _, attr = _BUILTINS[name].partition(":")
    return getattr(importlib.import_module(f"llmops.evals.evaluators.{module}"), attr)


def known_names() -> list[str]:
    return sorted({*_BUILTINS, *_ALIASES})


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(scorer name, parameters) of a spec; aliases and ``judge:<rubric>`` resolved."""
    if isinstance(spec, str):
        name, params = spec.strip(), {}
    elif isinstance(spec, Mapping):
        params = dict(spec)
        raw = params.pop("name", None) if "name" in params else params.pop("type", None)
        if "name" in spec and "type" in spec:
            params.pop("type", None)
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidInputError("a scorer spec needs a 'name' (or 'type')", param="name")
        name = raw.strip()
    else:
        raise InvalidInputError(f"a scorer spec is a name or a mapping, got {type(spec).__name__}")
    if name.startswith("judge:"):
        name, params = "judge", {"rubric": name.partition(":")[2], **params}
    if name in _ALIASES:
        target, implied = _ALIASES[name]
        name, params = target, {**implied, **params}
    if name not in _BUILTINS:
        raise InvalidInputError(
            f"unknown scorer {name!r}; known scorers: {', '.join(known_names())}", param="name", code="unknown_scorer"
        )
    return name, params


def create_evaluator(spec: str | Mapping[str, Any], deps: EvaluatorDeps | None = None) -> Evaluator:
    """Build a scorer from its spec; raises :class:`InvalidInputError` for unknown names or bad parameters."""
    name, raw = parse_spec(spec)
    cls = _class(name)
    params = Params(name, raw, cls.params)
    evaluator: Evaluator = cls.from_spec(params, deps if deps is not None else EvaluatorDeps())
    return evaluator


def list_evaluators() -> list[EvaluatorInfo]:
    """The built-in scorers (aliases not repeated), sorted by name."""
    out = []
    for name in sorted(_BUILTINS):
        cls = _class(name)
        params = {**cls.params, **COMMON_PARAMS}
        out.append(EvaluatorInfo(name, cls.version, cls.kind, cls.description, params))
    return out
