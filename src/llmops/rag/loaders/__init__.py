"""Document loaders: files (text, Markdown, HTML, PDF) and pushed text -> :class:`ParsedDocument`.

A parsed document is its plain text plus *blocks*: spans of the text that share a heading path and a page.
Chunks never cross a block boundary (``rag.chunking``). Every per-file problem is a :class:`LoadError`
carrying the reason; callers report it and go on with the batch.
"""

from llmops.rag.loaders.base import (
    FORMATS,
    SUFFIXES,
    Block,
    LoadError,
    ParsedDocument,
    decode_bytes,
    load_file,
    parse_text,
)

__all__ = ["FORMATS", "SUFFIXES", "Block", "LoadError", "ParsedDocument", "decode_bytes", "load_file", "parse_text"]
