"""N-gram helpers for BLEU and ROUGE: tokenising, counting, longest common subsequence."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from llmops.evals.models import EvalCase

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str, *, lowercase: bool = True, punctuation: bool = False) -> list[str]:
    """Word tokens (``\\w+``); punctuation marks as their own tokens when ``punctuation``."""
    if lowercase:
        text = text.casefold()
    found = _TOKEN.findall(text)
    return found if punctuation else [t for t in found if t[0].isalnum() or t[0] == "_"]


def ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def references(case: EvalCase, extra: Mapping[str, Any] | None = None) -> list[str]:
    """The expected output plus any ``metadata["references"]`` (a list of strings)."""
    refs = [case.expected] if case.expected is not None else []
    more = (extra or case.metadata).get("references")
    if isinstance(more, list):
        refs += [r for r in more if isinstance(r, str)]
    return refs
