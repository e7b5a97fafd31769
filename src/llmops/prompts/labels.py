"""Label rules: which side of a canary split serves a call, and where a rollback goes.

**Canary.** A label may point at ``version`` and send ``canary_percent`` % of calls to ``canary_version``.
The side is sticky: the bucket is a hash of (prompt, label, sticky key), the key being the caller's user id,
else its session id; a call with neither picks at random.

**Rollback.** A label's moves form an undo stack: a move pushes its new state, a rollback pops. Rolling
back from a canary split keeps only the stable version (all traffic back on one version); otherwise the
label returns to the newest earlier state on a different version, without its canary.
"""

from __future__ import annotations

import hashlib
import random

from llmops.prompts.models import LabelMove, LabelState

BUCKETS = 10_000


def bucket(name: str, label: str, sticky_key: str) -> int:
    digest = hashlib.blake2b(f"{name}\x1f{label}\x1f{sticky_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def pick(state: LabelState, *, name: str, label: str, sticky_key: str | None) -> tuple[int, bool | None]:
    """(version to serve, whether it is the canary side; None when the label has no split)."""
    if state.canary_version is None or state.canary_percent is None:
        return state.version, None
    b = bucket(name, label, sticky_key) if sticky_key else random.randrange(BUCKETS)
    if b < state.canary_percent * BUCKETS / 100:
        return state.canary_version, True
    return state.version, False


def replay(history: list[LabelMove]) -> list[LabelState]:
    """The undo stack of one label after its moves (oldest first); the top is the current state."""
    stack: list[LabelState] = []
    for move in history:
        if move.action != "rollback":
            stack.append(move.after)
            continue
        while stack and stack[-1].version != move.after.version:
            stack.pop()
        if stack:
            stack[-1] = move.after
        else:
            stack.append(move.after)
    return stack


def rollback_target(current: LabelState, history: list[LabelMove]) -> LabelState | None:
    """Where a rollback sends the label, or None when there is nothing to go back to."""
    if current.has_canary:
        return LabelState(current.version)
    for state in reversed(replay(history)[:-1]):
        if state.version != current.version:
            return LabelState(state.version)
    return None
