"""Sentence splitting for claim-level scorers (no model: punctuation rules good enough for answers)."""

from __future__ import annotations

import re

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|Prof|St|No|approx|U\.S)\.$", re.IGNORECASE)
MIN_CLAIM_CHARS = 3


def sentences(text: str) -> list[str]:
    """Sentences of ``text``; a split after a known abbreviation is undone."""
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    out: list[str] = []
    for part in parts:
        if out and _ABBREV.search(out[-1]):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return [s for s in out if len(s) >= MIN_CLAIM_CHARS]


def question_of(value: object) -> str:
    """The question text of an :class:`EvalCase` input: a string, the last user message, or variables."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for message in reversed(value):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return ""
    if isinstance(value, dict):
        for key in ("question", "query", "input", "prompt"):
            if isinstance(value.get(key), str):
                return str(value[key])
        return " ".join(str(v) for v in value.values() if isinstance(v, str))
    return "" if value is None else str(value)
