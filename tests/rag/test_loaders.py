"""Loaders on real files: text, Markdown headings, HTML (script/style dropped), PDF pages, encodings, and
per-file errors with their reason (empty, binary, huge, unsupported, bad encoding, broken PDF)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.rag.chunking import chunk_document
from llmops.rag.loaders import LoadError, load_file
from tests.rag.pdf import make_pdf


def test_markdown_headings_become_chunk_heading_paths(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("intro\n\n# Top\n\ntext one\n\n## Sub\n\ntext two\n\n# Other\n\nthree\n")
    doc = load_file(f, max_bytes=10_000)
    pieces = chunk_document(doc, size=100, overlap=10)
    assert [p.heading for p in pieces] == ["", "Top", "Top > Sub", "Other"]
    assert doc.title == "intro" and doc.encoding == "utf-8"


def test_html_drops_script_and_style_and_keeps_headings(tmp_path: Path) -> None:
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Guide</title><style>p{color:red}</style></head><body><h1>Setup</h1>"
        "<p>Install it.</p><script>alert('x')</script><h2>Linux</h2><p>Use apt.</p></body></html>"
    )
    doc = load_file(f, max_bytes=10_000)
    assert doc.title == "Guide" and "alert" not in doc.text and "color" not in doc.text
    assert [b.heading for b in doc.blocks] == ["Setup", "Setup > Linux"]


def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    f = tmp_path / "manual.pdf"
    f.write_bytes(make_pdf(["Page one talks about pumps", "Page two talks about valves"]))
    doc = load_file(f, max_bytes=100_000)
    pieces = chunk_document(doc, size=200, overlap=0)
    assert [(p.page, "valves" in doc.text[p.start : p.end]) for p in pieces] == [(1, False), (2, True)]


def test_cp1252_and_bom_files_decode(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_bytes("café – 10 €".encode("cp1252"))
    (tmp_path / "b.txt").write_bytes("\ufeffhello".encode())
    assert load_file(tmp_path / "w.txt", max_bytes=100).encoding == "cp1252"
    bom = load_file(tmp_path / "b.txt", max_bytes=100)
    assert bom.text == "hello" and bom.encoding == "utf-8"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n ", "empty document"),
        ("bin.txt", b"abc\x00\x01\x02", "binary file"),
        ("huge.txt", b"x" * 2000, "too large"),
        ("img.png", b"\x89PNG", "unsupported file type"),
        ("bad.txt", b"\x81\x8d\x8f\x90\x9d", "bad encoding"),
        ("broken.pdf", b"%PDF-1.4 garbage", "unreadable PDF"),
    ],
)
def test_bad_files_are_reported_with_a_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(LoadError) as err:
        load_file(f, max_bytes=1000)
    assert reason in err.value.reason and err.value.source == name
