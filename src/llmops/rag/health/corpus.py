"""Load a directory of Markdown/text documents with an optional front matter block (``title``,
``effective_date``, other keys as metadata) as plain ``DocText`` inputs: used by the shipped corpus
(``examples/corpus``), the benchmark and the tests, independently of the RAG store."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.rag.health.contradictions import ChunkText, DocText

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


@dataclass(frozen=True)
class CorpusFile:
    document_id: str
    title: str
    text: str
    metadata: dict[str, Any]
    effective_date: datetime | None


def parse_front_matter(raw: str) -> tuple[dict[str, str], str]:
    m = _FRONT.match(raw)
    if not m:
        return {}, raw
    meta: dict[str, str] = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta, raw[m.end() :]


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_corpus(directory: Path) -> list[CorpusFile]:
    out: list[CorpusFile] = []
    for path in sorted(directory.glob("*.md")) + sorted(directory.glob("*.txt")):
        meta, text = parse_front_matter(path.read_text(encoding="utf-8"))
        out.append(
            CorpusFile(
                document_id=path.name,
                title=meta.pop("title", path.stem),
                text=text,
                metadata=dict(meta),
                effective_date=parse_date(meta.get("effective_date")),
            )
        )
    return out


def paragraph_chunks(document_id: str, text: str) -> tuple[ChunkText, ...]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return tuple(
        ChunkText(hashlib.sha256(f"{document_id}#{i}".encode()).hexdigest()[:16], p) for i, p in enumerate(paragraphs)
    )


def as_doc_texts(files: list[CorpusFile]) -> list[DocText]:
    return [
        DocText(f.document_id, f.document_id, f.effective_date, paragraph_chunks(f.document_id, f.text)) for f in files
    ]
