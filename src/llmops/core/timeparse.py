"""Parsing the time values API users send: ISO 8601 or Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime

from llmops.core.errors import InvalidInputError


def parse_time_ns(value: str | None, *, param: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(f"{param} must be ISO 8601 or Unix seconds, got {value!r}", param=param) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1e9)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
