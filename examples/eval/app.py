"""The example target: a tiny "model" that answers arithmetic questions. Set ``EVAL_PLANT_BUG=1`` to make it
wrong on half of the items (a planted regression, to see the gate fail)."""

import os


def answer(question: str) -> str:
    a, b = (int(x) for x in question.split("+"))
    if os.environ.get("EVAL_PLANT_BUG") == "1" and a % 2 == 0:
        return str(a + b + 1)
    return str(a + b)
