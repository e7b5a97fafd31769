"""A light local toxicity classifier: a lexicon of insults/threats/obscenities/hate/harassment patterns combined
with logistic-regression heads over the MiniLM sentence embeddings.

Why this shape: no packaged toxicity model is light (``toxic-comment-classifier`` needs TensorFlow, a 2.4 GB
environment; it may be installed as an optional extra, never by default). The heads are six one-vs-rest logistic
regressions (``toxic`` and the five categories) over the 384-dim embeddings that the gateway already ships;
their weights (``data/toxicity_head.npz``, ~10 KB) are trained offline by ``scripts/train_toxicity.py`` on
``llmops/evals/data/toxicity_train.jsonl`` and measured on the separate ``toxicity_heldout.jsonl``
(docs/scorers.md). The lexicon catches explicit wording the small training set cannot cover; the heads catch
paraphrases the lexicon misses. A text's toxicity is the larger of the two signals; a category is reported when
either signal for it reaches 0.5.

``ToxicityModel`` takes the embedding function (texts -> unit vectors) so that the caller decides which
embedder instance (and thread pool) runs it; it is thread-safe and loads its weights on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATEGORIES = ("insult", "threat", "obscene", "hate", "harassment")
LABELS = ("toxic", *CATEGORIES)
WEIGHTS = Path(__file__).parent / "data" / "toxicity_head.npz"
LEXICON_SCORE = 0.95

_YOU = r"(?:you|your|you're|youre|ur|u|he|she|they|this guy|that guy)"
_INSULT_WORDS = (
    r"idiot\w*|moron\w*|imbecile\w*|dimwit\w*|halfwit\w*|dumbass\w*|retard\w*|cretin\w*|buffoon\w*|nitwit\w*|"
    r"loser\w*|clown|pathetic|worthless|useless waste|brain-?dead|brainless|stupid|dumb|incompetent|talentless|"
    r"ignorant|scum\w*|jerk\w*|coward\w*|liar\w*|troll|ugly|hack"
)
_GROUPS = (
    r"immigrants?|refugees?|foreigners?|muslims?|jews?|jewish people|gays?|gay people|lesbians?|trans people|"
    r"black people|blacks|whites|asians?|mexicans?|arabs?|women|girls|disabled people|those people|these people"
)
_DEHUMANISE = (
    r"vermin|subhuman|animals|parasites?|plague|filth|disease|inferior|wiped out|exterminat\w+|deported|"
    r"should not exist|shouldn't exist|terrorists|criminals|too stupid|don't deserve|must be stopped|burden"
)
_PATTERNS: dict[str, list[str]] = {
    "insult": [
        rf"\b{_YOU}\b[^.!?]{{0,40}}\b(?:{_INSULT_WORDS})\b",
        rf"\b(?:{_INSULT_WORDS})\b[^.!?]{{0,20}}\b(?:you|u)\b",
        r"\b(?:you|u)\s+(?:absolute|complete|total|stupid|fucking|ugly)\s+\w+",
        r"\bshut\s+(?:the\s+fuck\s+)?up\b",
        r"\b(?:go\s+)?(?:fuck|screw)\s+(?:you|yourself)\b",
        r"\beat\s+shit\b",
    ],
    "threat": [
        r"\b(?:i|we)(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+gonna)\s+"
        r"(?:kill|hurt|stab|shoot|strangle|murder|beat|smash|break|burn|hunt|find|make\s+you\s+pay|get)\b",
        r"\byou(?:'ll|\s+will)\s+(?:die|be\s+dead|regret|bleed|end\s+up)\b",
        r"\bwatch\s+(?:your\s+back|out)\b",
        r"\b(?:coming|come)\s+(?:for|after)\s+you\b",
        r"\b(?:someone|somebody)\s+should\s+(?:shoot|kill|hurt|stab)\b",
        r"\bpeople\s+like\s+you\s+(?:get|should\s+get)\s+(?:shot|killed|hurt|beaten)\b",
        r"\bsleep\s+with\s+one\s+eye\s+open\b",
    ],
    "obscene": [
        r"\b(?:fuck\w*|motherfuck\w*|shit\w*|bullshit|cunt\w*|asshole\w*|bitch\w*|dickhead\w*|twat\w*|wank\w*)\b",
    ],
    "hate": [
        rf"\b(?:{_GROUPS})\b[^.!?]{{0,40}}\b(?:{_DEHUMANISE})\b",
        rf"\bi\s+hate\s+(?:all\s+)?(?:{_GROUPS})\b",
    ],
    "harassment": [
        r"\b(?:kill|hang)\s+yourself\b|\bkys\b|\bgo\s+die\b",
        r"\b(?:nobody|no\s+one|everyone|everybody)\s+(?:here\s+)?(?:wants|hates|would\s+miss|is\s+laughing\s+at)\s+you\b",
        r"\b(?:post|posting|share|sharing|leak|leaking)\w*\s+your\s+(?:home\s+)?(?:address|photos|number)\b",
        r"\buntil\s+you\s+(?:quit|answer|reply|leave|respond)\b",
        r"\b(?:delete\s+your\s+account|you\s+should\s+(?:just\s+)?disappear|not\s+welcome\s+anywhere)\b",
        r"\bstop\s+breathing\b|\bto\s+humiliate\s+you\b|\bi(?:'ll|\s+will)\s+tell\s+everyone\b",
    ],
}
_COMPILED = {cat: [re.compile(p, re.IGNORECASE) for p in pats] for cat, pats in _PATTERNS.items()}


def lexicon_hits(text: str) -> dict[str, list[str]]:
    """Category -> the matched phrases."""
    out: dict[str, list[str]] = {}
    for cat, patterns in _COMPILED.items():
        found = [m.group(0) for p in patterns for m in [p.search(text)] if m]
        if found:
            out[cat] = found
    return out


@dataclass(frozen=True)
class ToxicityPrediction:
    score: float  # P(toxic), the larger of the head and the lexicon
    categories: dict[str, float]  # category -> probability
    lexicon: dict[str, list[str]] = field(default_factory=dict)
    head_score: float = 0.0

    def flagged(self, threshold: float = 0.5) -> list[str]:
        return [c for c, p in self.categories.items() if p >= threshold]


class ToxicityModel:
    def __init__(self, *, embed: Callable[[list[str]], np.ndarray], weights: Path = WEIGHTS) -> None:
        self._embed = embed
        self._path = weights
        self._lock = threading.Lock()
        self._w: np.ndarray | None = None
        self._b: np.ndarray | None = None

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._w is None or self._b is None:
                with np.load(self._path) as data:
                    if tuple(str(x) for x in data["labels"]) != LABELS:
                        raise RuntimeError(f"{self._path} was trained for other labels")
                    self._w, self._b = data["w"].astype(np.float32), data["b"].astype(np.float32)
            return self._w, self._b

    def head(self, texts: list[str]) -> np.ndarray:
        """(n, 6) probabilities of the logistic heads, columns in :data:`LABELS` order."""
        w, b = self._load()
        x = np.asarray(self._embed(texts), dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-(x @ w.T + b)))

    def predict(self, texts: Sequence[str]) -> list[ToxicityPrediction]:
        if not texts:
            return []
        probs = self.head(list(texts))
        out = []
        for text, row in zip(texts, probs, strict=True):
            hits = lexicon_hits(text)
            cats = {c: max(float(row[i + 1]), LEXICON_SCORE if c in hits else 0.0) for i, c in enumerate(CATEGORIES)}
            score = max(float(row[0]), LEXICON_SCORE if hits else 0.0)
            out.append(ToxicityPrediction(score, cats, hits, float(row[0])))
        return out
