"""Parsing files and pushed text into text + structural blocks.

Formats: ``text`` (one block), ``markdown`` (a block per ATX heading, with the heading path "A > B"),
``html`` (converted to Markdown-like text by :mod:`.html`, then as markdown), ``pdf`` (a block per page,
page numbers kept). Encodings tried in order: utf-8-sig (utf-8 with or without BOM), cp1252.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Format = Literal["text", "markdown", "html", "pdf"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "html", "pdf")
SUFFIXES: dict[str, Format] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)


class LoadError(Exception):
    """A file (or pushed document) that cannot be ingested, and why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    text: str
    title: str
    blocks: tuple[Block, ...]
    format: Format = "text"
    encoding: str | None = None
    pages: tuple[str, ...] = field(default=())  # PDF page texts (what a client pushes)


def decode_bytes(data: bytes, source: str) -> tuple[str, str]:
    """(text, encoding) or LoadError naming the encodings tried."""
    if b"\x00" in data[:8192]:
        raise LoadError(source, "binary file (NUL bytes); not a text document")
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc), "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    raise LoadError(source, "bad encoding: not valid utf-8, utf-8-sig or cp1252")


def _first_line(text: str, default: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return default


def markdown_blocks(text: str) -> tuple[Block, ...]:
    """A block per heading section; the heading line belongs to its section."""
    marks = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _HEADING.finditer(text)]
    blocks: list[Block] = []
    if not marks or marks[0][0] > 0:
        end = marks[0][0] if marks else len(text)
        if text[:end].strip():
            blocks.append(Block(0, end, ""))
    path: list[tuple[int, str]] = []
    for i, (start, level, title) in enumerate(marks):
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        blocks.append(Block(start, end, " > ".join(t for _, t in path)))
    return tuple(blocks)


def _pdf_document(pages: list[str], default_title: str) -> ParsedDocument:
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for number, page in enumerate(pages, start=1):
        if parts:
            parts.append("\n\n")
            pos += 2
        parts.append(page)
        if page.strip():
            blocks.append(Block(pos, pos + len(page), "", number))
        pos += len(page)
    text = "".join(parts)
    return ParsedDocument(text, _first_line(text, default_title), tuple(blocks), "pdf", None, tuple(pages))


def parse_text(
    text: str, fmt: Format, *, source: str, title: str | None = None, pages: list[str] | None = None
) -> ParsedDocument:
    """A pushed document (or a decoded file) into text + blocks. ``pages`` (PDF) replaces ``text``."""
    if fmt == "pdf" or pages is not None:
        doc = _pdf_document(pages if pages is not None else [text], title or source)
    elif fmt == "html":
        from llmops.rag.loaders.html import html_to_markdown

        md, html_title = html_to_markdown(text)
        doc = ParsedDocument(md, html_title or _first_line(md, source), markdown_blocks(md), "html")
    elif fmt == "markdown":
        doc = ParsedDocument(text, _first_line(text, source), markdown_blocks(text), "markdown")
    else:
        blocks = (Block(0, len(text)),) if text.strip() else ()
        doc = ParsedDocument(text, _first_line(text, source), blocks, "text")
    if not doc.text.strip():
        raise LoadError(source, "empty document (no text)")
    if title:
        doc = ParsedDocument(doc.text, title, doc.blocks, doc.format, doc.encoding, doc.pages)
    return doc


def _read_pdf(path: Path, source: str) -> list[str]:
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            raise LoadError(source, "encrypted PDF")
        return [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(source, f"unreadable PDF: {exc}") from exc


def load_file(path: Path, *, max_bytes: int, source: str | None = None) -> ParsedDocument:
    """Read and parse one file; LoadError (with the reason) for anything that cannot be ingested."""
    source = source or path.name
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(source, f"unsupported file type {path.suffix or '(none)'!r} (supported: {', '.join(SUFFIXES)})")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(source, f"unreadable: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise LoadError(source, f"too large: {size} bytes > limit {max_bytes} (LLMOPS_RAG_MAX_FILE_BYTES)")
    if size == 0:
        raise LoadError(source, "empty file")
    if fmt == "pdf":
        return parse_text("", "pdf", source=source, pages=_read_pdf(path, source))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(source, f"unreadable: {exc.strerror or exc}") from exc
    text, encoding = decode_bytes(data, source)
    doc = parse_text(text, fmt, source=source)
    return ParsedDocument(doc.text, doc.title, doc.blocks, doc.format, encoding, doc.pages)
