"""Built-in judge rubrics (G-Eval style: criteria, evaluation steps, an integer scale)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.core.errors import InvalidInputError

MAX_RUBRIC_CHARS = 8000


@dataclass(frozen=True)
class Rubric:
    name: str
    criteria: str
    steps: tuple[str, ...]
    scale: tuple[int, int] = (1, 5)
    uses_expected: bool = False


BUILTIN: dict[str, Rubric] = {
    "relevance": Rubric(
        "relevance",
        "Relevance: the answer addresses the user's question directly, without drifting to other topics.",
        (
            "Read the question and identify what is being asked.",
            "Check whether the answer addresses that, fully or partly.",
            "Penalise content unrelated to the question and evasive non-answers.",
        ),
    ),
    "helpfulness": Rubric(
        "helpfulness",
        "Helpfulness: the answer would let the user achieve their goal: it is correct, complete, actionable.",
        (
            "Identify the user's goal.",
            "Judge whether the answer gives what is needed to reach it (steps, facts, caveats).",
            "Penalise vagueness, missing essentials, and needless refusals.",
        ),
    ),
    "factual_accuracy": Rubric(
        "factual_accuracy",
        "Factual accuracy: every factual statement in the answer is true and agrees with the reference answer "
        "and contexts when given.",
        (
            "List the factual statements in the answer.",
            "Compare each with the reference answer and contexts (or well-established knowledge).",
            "Penalise each false or contradicted statement; unsupported guesses count against the answer.",
        ),
        uses_expected=True,
    ),
    "style_tone": Rubric(
        "style_tone",
        "Style and tone: the answer is clear, well organised, polite and professional, with a tone suited to "
        "the question (and to any style the metadata asks for).",
        (
            "Judge clarity and structure.",
            "Judge politeness and whether the tone fits the request.",
            "Penalise rudeness, rambling, and formatting that hinders reading.",
        ),
    ),
}
BUILTIN["factual"] = BUILTIN["factual_accuracy"]
BUILTIN["style"] = BUILTIN["tone"] = BUILTIN["style_tone"]


def rubric_from(value: Any) -> Rubric:
    """A built-in rubric by name, or a custom one from ``{criteria, steps?, scale?, name?}``."""
    if isinstance(value, str):
        if value not in BUILTIN:
            known = ", ".join(sorted(BUILTIN))
            raise InvalidInputError(
                f"unknown judge rubric {value!r}; known: {known} (or a custom mapping)", param="rubric"
            )
        return BUILTIN[value]
    if not isinstance(value, Mapping):
        raise InvalidInputError("'rubric' must be a built-in name or a mapping with 'criteria'", param="rubric")
    criteria = value.get("criteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise InvalidInputError("a custom rubric needs 'criteria' (text)", param="rubric.criteria")
    steps = value.get("steps") or ()
    if isinstance(steps, str):
        steps = [steps]
    if not isinstance(steps, Sequence) or not all(isinstance(s, str) for s in steps):
        raise InvalidInputError("rubric 'steps' must be a list of strings", param="rubric.steps")
    scale = value.get("scale", [1, 5])
    if (
        not isinstance(scale, Sequence)
        or len(scale) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in scale)
        or not 0 <= scale[0] < scale[1] <= 100
    ):
        raise InvalidInputError(
            "rubric 'scale' must be [low, high] integers, 0 <= low < high <= 100", param="rubric.scale"
        )
    name = value.get("name", "custom")
    if not isinstance(name, str):
        raise InvalidInputError("rubric 'name' must be a string", param="rubric.name")
    if len(criteria) + sum(len(s) for s in steps) > MAX_RUBRIC_CHARS:
        raise InvalidInputError(f"rubric longer than {MAX_RUBRIC_CHARS} characters", param="rubric")
    return Rubric(name, criteria.strip(), tuple(steps), (scale[0], scale[1]), bool(value.get("uses_expected", True)))
