# Native helpers of OTLP ingest (_otlpc.c); built at install when a C compiler is there.
from typing import Any

# (scope name, scope version, [span tuple, ...]); a span tuple's fields are listed in _otlpc.c
_Scope = tuple[str, str, list[tuple[Any, ...]]]

# [(resource attributes, [scope, ...]), ...], or None: decode this body with upb.
def decode(body: bytes, max_value_chars: int, /) -> list[tuple[dict[str, Any], list[_Scope]]] | None: ...

# Whether any needle occurs in body.
def contains_any(body: bytes, needles: tuple[bytes, ...], /) -> bool: ...
