"""Trace queries as URL parameters: one parser shared by ``GET /api/traces``, the export and the web UI.

start, end            ISO 8601 or Unix seconds
model, status, user, session, key
attr.<key>=<value>    some span has attribute <key> equal to <value> (compared as text; keys may hold dots)
score.<name>=[op:]v   the trace has a score <name> with value op v; op is gt, gte, lt, lte, eq (default), ne;
                      v is a number, true/false, or a label (eq/ne only)
tag=<t>               the trace has tag <t> (repeat for several: all must match)
min_cost, max_cost    trace cost in USD (inclusive)
min_latency_ms, max_latency_ms
q=<words>             full-text search over span inputs/outputs (every word must occur)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import get_args

from llmops.core.errors import InvalidInputError
from llmops.core.timeparse import parse_time_ns
from llmops.tracing.models import ScoreCondition, ScoreOp, TraceFilter

MAX_CONDITIONS = 20
MAX_KEY_CHARS = 256
_OPS: tuple[str, ...] = get_args(ScoreOp)
_SIMPLE = {"model": "model", "user": "user_id", "session": "session_id", "key": "key_id"}
_FLOATS = {
    "min_cost": "min_cost_usd",
    "max_cost": "max_cost_usd",
    "min_latency_ms": "min_latency_ms",
    "max_latency_ms": "max_latency_ms",
}


def _key(raw: str, param: str) -> str:
    if not raw or len(raw) > MAX_KEY_CHARS or '"' in raw or any(ord(ch) < 32 for ch in raw):
        raise InvalidInputError(
            f"{param} needs a key of 1-{MAX_KEY_CHARS} characters without quotes or control characters", param=param
        )
    return raw


def _number(raw: str, param: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{param} must be a number, not {raw!r}", param=param) from exc
    if not math.isfinite(value):
        raise InvalidInputError(f"{param} must be a finite number", param=param)
    return value


def parse_score_condition(name: str, raw: str) -> ScoreCondition:
    """``gt:0.5`` / ``0.5`` / ``eq:true`` / ``ne:spam`` into a condition on score ``name``."""
    param = f"score.{name}"
    op, sep, text = raw.partition(":")
    if not sep or op not in _OPS:
        op, text = "eq", raw
    value: float | str
    if text.lower() in ("true", "false"):
        value = 1.0 if text.lower() == "true" else 0.0
    else:
        try:
            value = _number(text, param)
        except InvalidInputError:
            value = text
    if isinstance(value, str) and op not in ("eq", "ne"):
        raise InvalidInputError(f"{param}: {op} needs a number, not {text!r}", param=param)
    return ScoreCondition(_key(name, param), op, value)  # type: ignore[arg-type]


def parse_trace_filter(params: Iterable[tuple[str, str]]) -> TraceFilter:
    """Build a :class:`TraceFilter` from (name, value) query pairs; unknown names (cursor, limit…) are ignored."""
    fields: dict[str, object] = {}
    attributes: list[tuple[str, str]] = []
    scores: list[ScoreCondition] = []
    tags: list[str] = []
    for name, value in params:
        if name.startswith("attr."):
            attributes.append((_key(name[5:], name), value))
        elif name.startswith("score."):
            scores.append(parse_score_condition(name[6:], value))
        elif value == "":
            continue
        elif name == "tag":
            tags.append(value)
        elif name in ("start", "end"):
            fields[f"{name}_ns"] = parse_time_ns(value, param=name)
        elif name == "status":
            if value not in ("ok", "error"):
                raise InvalidInputError("status must be ok or error", param="status")
            fields["status"] = value
        elif name in _SIMPLE:
            fields[_SIMPLE[name]] = value
        elif name in _FLOATS:
            fields[_FLOATS[name]] = _number(value, name)
        elif name == "q":
            fields["text"] = value[:1000]
    if len(attributes) + len(scores) + len(tags) > MAX_CONDITIONS:
        raise InvalidInputError(f"at most {MAX_CONDITIONS} attr./score./tag conditions per query", param="attr")
    return TraceFilter(attributes=tuple(attributes), scores=tuple(scores), tags=tuple(tags), **fields)  # type: ignore[arg-type]


def filter_params(flt: TraceFilter) -> list[tuple[str, str]]:
    """The query parameters of the query fields of ``flt`` (links that keep a filter, e.g. export)."""
    out: list[tuple[str, str]] = [(f"attr.{k}", v) for k, v in flt.attributes]
    out += [(f"score.{c.name}", f"{c.op}:{_score_text(c.value)}") for c in flt.scores]
    out += [("tag", t) for t in flt.tags]
    out += [(p, str(getattr(flt, f))) for p, f in _FLOATS.items() if getattr(flt, f) is not None]
    if flt.text:
        out.append(("q", flt.text))
    return out


def _score_text(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
