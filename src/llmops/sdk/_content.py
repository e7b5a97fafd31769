"""Turning arbitrary Python values into span attribute strings: safe JSON, bounded size.

- :func:`to_json` never raises: orjson first (fast; dataclasses, datetimes, UUIDs, numpy natively), pydantic
  models through ``model_dump``, sets as lists, anything else as its ``repr``; then the standard library for
  what orjson refuses (integers wider than 64 bits), then ``repr`` of the whole value.
- :func:`clip` bounds a string to a number of UTF-8 *bytes* (the unit exporters and the server count), cutting
  on a character boundary and ending with :data:`TRUNCATED`.
- :class:`ArgNames` maps a call's ``(args, kwargs)`` to ``{parameter: value}`` with names computed once at
  decoration time, so the hot path does no ``inspect`` work.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from typing import Any

import orjson

TRUNCATED = "…[truncated]"
_TRUNCATED_BYTES = len(TRUNCATED.encode())
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # a broken model_dump must not break the caller: fall back to repr
            return _repr(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # orjson's own path, for the stdlib fallback
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    return _repr(obj)


def _repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # a __repr__ that raises
        return f"<{type(obj).__qualname__}>"


def to_json(value: Any) -> str:
    """``value`` as JSON text; never raises."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(value, default=_default, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(_repr(value), ensure_ascii=False)


def clip(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (marker included) when it is longer."""
    if len(text) * 4 <= max_bytes:  # fast path: cannot be over the limit
        return text
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    keep = max(0, max_bytes - _TRUNCATED_BYTES)
    return data[:keep].decode("utf-8", "ignore") + TRUNCATED


def as_text(value: Any, max_bytes: int) -> tuple[str, str]:
    """(attribute text, mime type) of a captured input/output: strings as plain text, the rest as JSON."""
    if isinstance(value, str):
        return clip(value, max_bytes), "text/plain"
    return clip(to_json(value), max_bytes), "application/json"


class ArgNames:
    """Maps call arguments to parameter names; ``self``/``cls`` (a method's first parameter) are left out."""

    __slots__ = ("_names", "_skip", "_varargs", "_count")

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):  # builtins without a signature
            params = []
        positional = [p.name for p in params if p.kind in _POSITIONAL]
        self._skip = 1 if positional and positional[0] in ("self", "cls") else 0
        self._names = tuple(positional[self._skip :])  # the names that are captured, in order
        self._count = len(positional)
        self._varargs = next((p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), "args")

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = dict(zip(self._names, args[1:] if self._skip else args, strict=False))
        if len(args) > self._count:
            bound[self._varargs] = args[self._count :]
        if kwargs:
            bound.update(kwargs)
        return bound
