"""Jinja filters: how numbers, times and ids look on every page (one place, so pages agree)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

from llmops.core.timeparse import iso

DASH = "—"


def duration(ms: float | None) -> str:
    if ms is None:
        return DASH
    if ms == 0:
        return "0 ms"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes)}m {seconds:.0f}s"


def cost(usd: float | None) -> str:
    """Unknown price (None) is a dash, never $0: free and unpriced are different facts."""
    if usd is None:
        return DASH
    if usd == 0:
        return "$0"
    if usd < 0.000001:
        return "<$0.000001"
    if usd < 0.01:
        return f"${usd:.6f}".rstrip("0")
    return f"${usd:,.4f}".rstrip("0").rstrip(".")


def tokens(n: int | None) -> str:
    return DASH if n is None else f"{n:,}"


def utc_time(ns: int) -> str:
    """Server-side text in UTC; ``app.js`` rewrites ``<time>`` elements into the viewer's zone."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_id(value: str | None, n: int = 8) -> str:
    return "" if not value else value[:n]


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        text: str = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def percent(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:.1f}%"


def install_filters(env: Environment) -> None:
    env.filters.update(
        duration=duration,
        cost=cost,
        tokens=tokens,
        utc_time=utc_time,
        iso=iso,
        short_id=short_id,
        pretty_json=pretty_json,
        percent=percent,
    )
