"""llmops: self-hosted LLMOps platform. This module is the public SDK surface (``__all__``).

``import llmops`` stays light (no FastAPI, no SQLAlchemy): SDK functions are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from llmops.prompts.client import get_prompt
    from llmops.sdk import (
        ObservedSpan,
        add_tags,
        current_span_id,
        current_trace_id,
        flush,
        init,
        observe,
        score,
        set_session,
        set_user,
        shutdown,
        span,
        trace_headers,
        wrap_openai,
    )
    from llmops.sdk.rag import rag_search  # RAG core

__all__ = [
    "__version__",
    "get_prompt",
    "rag_search",
    "ObservedSpan",
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

# public name -> module that defines it (imported on first access, then cached in this module)
_LAZY = {"get_prompt": "llmops.prompts.client", "rag_search": "llmops.sdk.rag"}
_LAZY.update((name, "llmops.sdk") for name in __all__ if name not in _LAZY and name != "__version__")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
