"""The native helpers of OTLP ingest (``_otlpc.c``: protobuf decoding, the redaction pre-check's trigger search),
or None when they were not built (no C compiler at install, or ``LLMOPS_PURE_PYTHON=1``): callers then take their
pure-Python path, which gives the same results with more CPU."""

from __future__ import annotations

from types import ModuleType

native: ModuleType | None
try:
    from llmops.tracing import _otlpc as native
except ImportError:
    native = None
