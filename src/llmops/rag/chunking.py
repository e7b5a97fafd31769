"""Structure-aware chunking: chunks stay inside one block (heading section or PDF page), break at a
paragraph, then a sentence, then a word boundary, and overlap by about ``overlap`` characters.

Invariants (property-tested in ``tests/rag/test_chunking.py``): every chunk's text is exactly
``text[start:end]``; chunks are in order of ``start``; every non-space character of a block is covered;
no chunk is longer than ``size``; no chunk crosses a block boundary.
Sizes are characters (about 4 per token for English text with the local embedder's tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmops.rag.loaders import Block, ParsedDocument


@dataclass(frozen=True)
class Piece:
    start: int
    end: int
    heading: str
    page: int | None


def _break_at(text: str, start: int, limit: int) -> int:
    """The best end (exclusive) of a chunk starting at ``start`` that must end by ``limit``."""
    floor = start + (limit - start) // 2
    for sep in ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "):
        i = text.rfind(sep, floor, limit)
        if i >= 0:
            return i + len(sep.rstrip()) if sep.strip() else i
    return limit


def _next_start(text: str, start: int, cut: int, overlap: int) -> int:
    if overlap <= 0:
        return cut
    pos = max(cut - overlap, start + 1)
    # begin the overlap at a word start (after a space), never at or past the cut
    space = text.find(" ", pos, cut)
    return space + 1 if 0 <= space < cut - 1 else cut


def _split_block(text: str, block: Block, size: int, overlap: int) -> list[Piece]:
    out: list[Piece] = []
    pos, end = block.start, block.end
    while pos < end:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        cut = end if end - pos <= size else _break_at(text, pos, pos + size)
        stop = cut
        while stop > pos and text[stop - 1].isspace():
            stop -= 1
        if stop > pos:
            out.append(Piece(pos, stop, block.heading, block.page))
        if cut >= end:
            break
        pos = _next_start(text, pos, cut, overlap)
    return out


def chunk_document(doc: ParsedDocument, *, size: int, overlap: int) -> list[Piece]:
    """The chunks of a parsed document, in order. ``overlap`` is clamped below ``size // 2``."""
    if size < 16:
        raise ValueError("chunk size must be at least 16 characters")
    overlap = max(0, min(overlap, size // 2 - 1))
    pieces: list[Piece] = []
    for block in doc.blocks:
        pieces.extend(_split_block(doc.text, block, size, overlap))
    return pieces
