"""The Python SDK: trace an application's own code and model calls into llmops, and score them.

Owns: ``init``/``flush``/``shutdown`` (an OpenTelemetry tracer provider exporting OTLP/HTTP to the server's
``/v1/traces``, ``runtime.py``), ``@observe`` (``observe.py``), ``span`` and the current span's user,
session and tags (``spans.py``), ``wrap_openai`` (``openai_wrap.py``, ``_genai.py``) and ``score``
(``scores.py``, a background sender to ``POST /api/scores``).

Must not import: any server code (``llmops.app``, ``cli``, ``web``, ``gateway``, ``tracing``, ``projects``,
``prompts``), FastAPI, SQLAlchemy or pydantic; from ``llmops.core`` only ``errors``. The import-linter
contracts in pyproject.toml enforce it. ``opentelemetry.sdk`` and the OTLP exporter load in ``init`` only.

Testing: unit tests pass ``init(exporter=InMemorySpanExporter(), set_global_provider=False)`` and assert on
the finished spans after ``flush()``; ``tests/sdk/test_sdk_e2e.py`` runs against a real server.
"""

from llmops.sdk._attributes import SpanKindName
from llmops.sdk.observe import observe
from llmops.sdk.openai_wrap import wrap_openai
from llmops.sdk.runtime import flush, init, shutdown
from llmops.sdk.scores import ScoreSource, score
from llmops.sdk.spans import (
    ObservedSpan,
    add_tags,
    current_span_id,
    current_trace_id,
    set_session,
    set_user,
    span,
    trace_headers,
)

__all__ = [
    "ObservedSpan",
    "ScoreSource",
    "SpanKindName",
    "add_tags",
    "current_span_id",
    "current_trace_id",
    "flush",
    "init",
    "observe",
    "score",
    "set_session",
    "set_user",
    "shutdown",
    "span",
    "trace_headers",
    "wrap_openai",
]
