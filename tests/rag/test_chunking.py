"""Chunking invariants, property-tested: each chunk is exactly ``text[start:end]``, chunks come in order, stay
inside one block (heading section / page), respect the size, and together cover every non-space character."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.rag.chunking import chunk_document
from llmops.rag.loaders import parse_text

WORD = st.text(alphabet="abcdefghij.,?!", min_size=1, max_size=30)
PARA = st.lists(WORD, min_size=1, max_size=60).map(" ".join)
SECTION = st.tuples(st.integers(0, 3), st.text(alphabet="xyz ", min_size=1, max_size=10), st.lists(PARA, max_size=5))


def _markdown(sections: list[tuple[int, str, list[str]]]) -> str:
    out = []
    for level, title, paras in sections:
        if level and title.strip():
            out.append("#" * level + " " + title.strip())
        out.extend(paras)
    return "\n\n".join(out) + "\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(SECTION, min_size=1, max_size=6), st.integers(16, 400), st.integers(0, 200))
def test_chunks_cover_in_order_within_blocks(
    sections: list[tuple[int, str, list[str]]], size: int, overlap: int
) -> None:
    text = _markdown(sections)
    if not text.strip():
        return
    doc = parse_text(text, "markdown", source="t")
    pieces = chunk_document(doc, size=size, overlap=overlap)
    covered = bytearray(len(text))
    for prev, cur in zip(pieces, pieces[1:], strict=False):
        assert prev.start < cur.start and prev.end <= cur.end
    for p in pieces:
        assert 0 <= p.start < p.end <= len(text) and p.end - p.start <= size
        assert text[p.start : p.end] == text[p.start : p.end].strip()
        block = next(b for b in doc.blocks if b.start <= p.start < b.end)
        assert p.end <= block.end and p.heading == block.heading
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
    for i, ch in enumerate(text):
        if not ch.isspace():
            assert covered[i], f"char {i} ({ch!r}) not in any chunk"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=5), st.integers(16, 200))
def test_pdf_pages_never_share_a_chunk(pages: list[str], size: int) -> None:
    if not "".join(pages).strip():
        return
    doc = parse_text("", "pdf", source="p", pages=pages)
    for p in chunk_document(doc, size=size, overlap=size // 4):
        block = next(b for b in doc.blocks if b.start <= p.start < b.end)
        assert p.page == block.page and p.end <= block.end
        assert doc.text[p.start : p.end].strip() in pages[block.page - 1]  # type: ignore[operator]
