"""Prompt management: a versioned registry with labels, canary splits and sandboxed Jinja2 rendering.

Owns: prompts and their immutable versions (``_sql.py``), labels and their history (``labels.py``: canary
buckets, rollback), the prompt spec and ``*.prompt`` file format (``spec.py``, ``files.py``), sandboxed
rendering (``rendering.py``), the in-process resolve cache (``_cache.py``), the REST API (``http.py``)
and the SDK client with its TTL cache (``client.py``, no server imports).

Imports only ``llmops.core`` (``http.py`` also reads ``llmops.projects.Principal``); the gateway resolves
``prompt:NAME@LABEL`` through :class:`PromptService`. This package's ``__init__`` imports neither FastAPI
nor SQLAlchemy, so ``llmops.get_prompt`` stays light. Tested in ``tests/prompts`` (store contract on
SQLite and PostgreSQL, a real server with the fake upstream, the SSTI suite, CLI round trips).
"""

from llmops.prompts.files import dump_file, parse_file
from llmops.prompts.models import (
    Caller,
    ChatMessage,
    Label,
    LabelMove,
    LabelState,
    Prompt,
    PromptContent,
    PromptSummary,
    PromptVersion,
    PushResult,
    Variable,
)
from llmops.prompts.rendering import CompiledPrompt
from llmops.prompts.service import PromptService, Resolution, parse_ref
from llmops.prompts.store import PromptStore

__all__ = [
    "Caller",
    "ChatMessage",
    "CompiledPrompt",
    "Label",
    "LabelMove",
    "LabelState",
    "Prompt",
    "PromptContent",
    "PromptService",
    "PromptStore",
    "PromptSummary",
    "PromptVersion",
    "PushResult",
    "Resolution",
    "Variable",
    "dump_file",
    "parse_file",
    "parse_ref",
]
