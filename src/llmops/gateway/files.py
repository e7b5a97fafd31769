"""OpenAI-compatible files (``/v1/files``): JSONL inputs of batches and the output / error files batches write.

Content lives on disk under ``LLMOPS_HOME/files/<file_id>`` (written to a temporary name, fsynced, renamed, the
directory fsynced: acknowledged only once durable); metadata rows live in the database (``files``, migration
0006), scoped by project. Uploads are streamed in chunks (never held in memory whole) and checked for size, UTF-8
and line count; the lines themselves are validated when a batch runs them (a malformed line fails alone).

Blocking work (disk, database) runs in a worker thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError, PayloadTooLargeError
from llmops.core.ids import new_id

UPLOAD_PURPOSES = ("batch",)
FilePurpose = Literal["batch", "batch_output"]
CHUNK = 1 << 20


@dataclass
class FileRecord:
    file_id: str
    project_id: str
    filename: str
    purpose: str
    bytes: int
    lines: int
    created_at: int

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


class FileStore(Protocol):
    def insert_file(self, record: FileRecord) -> None: ...
    def find_file(self, project_id: str, file_id: str) -> FileRecord | None: ...
    def list_files(
        self, project_id: str, *, purpose: str | None, after: str | None, limit: int
    ) -> list[FileRecord]: ...
    def delete_file(self, project_id: str, file_id: str) -> bool: ...
    def file_in_use(self, project_id: str, file_id: str) -> bool: ...


def new_file_id() -> str:
    return "file-" + new_id("f")[2:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileService:
    def __init__(self, store: FileStore, root: Path, *, max_bytes: int, max_lines: int) -> None:
        self._store = store
        self._root = root
        self._max_bytes = max_bytes
        self._max_lines = max_lines
        root.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        return self._root / file_id

    async def upload(self, project_id: str, *, filename: str, purpose: str, source: BinaryIO) -> FileRecord:
        """Store an uploaded JSONL file durably (size, UTF-8 and line-count checked), then its metadata row."""
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidInputError(
                f"purpose {purpose!r} is not supported; this gateway accepts {', '.join(UPLOAD_PURPOSES)}",
                param="purpose",
                code="invalid_purpose",
            )
        name = (filename or "upload.jsonl").replace("/", "_")[:512]
        return await asyncio.to_thread(self._write, project_id, name, purpose, _chunks(source))

    async def create_from_lines(self, project_id: str, *, filename: str, lines: Iterable[bytes]) -> FileRecord:
        """A generated file (``batch_output``), one JSON document per line."""
        return await asyncio.to_thread(self._write, project_id, filename, "batch_output", _joined(lines))

    def _write(self, project_id: str, filename: str, purpose: str, chunks: Iterable[bytes]) -> FileRecord:
        file_id = new_file_id()
        final, tmp = self.path(file_id), self._root / f".{file_id}.tmp"
        size, lines, last = 0, 0, b"\n"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise PayloadTooLargeError(f"file exceeds {self._max_bytes} bytes", param="file")
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        raise InvalidInputError(
                            f"file is not UTF-8 text (byte {size - len(chunk) + exc.start})", param="file"
                        ) from exc
                    lines += sum(1 for line in chunk.split(b"\n")[:-1])
                    last = chunk[-1:] or last
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            lines += 0 if last == b"\n" else 1
            if purpose == "batch" and (size == 0 or lines == 0):
                raise InvalidInputError("file is empty; send one JSON request per line", param="file")
            if purpose == "batch" and lines > self._max_lines:
                raise InvalidInputError(f"file has {lines} lines; at most {self._max_lines} allowed", param="file")
            os.replace(tmp, final)
            _fsync_dir(self._root)
        finally:
            tmp.unlink(missing_ok=True)
        record = FileRecord(file_id, project_id, filename, purpose, size, lines, int(time.time()))
        try:
            self._store.insert_file(record)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return record

    async def get(self, project_id: str, file_id: str) -> FileRecord:
        record = await asyncio.to_thread(self._store.find_file, project_id, file_id)
        if record is None:
            raise NotFoundError(f"No such File object: {file_id!r}", param="file_id", code="file_not_found")
        return record

    async def list_files(
        self, project_id: str, *, purpose: str | None = None, after: str | None = None, limit: int = 100
    ) -> tuple[list[FileRecord], bool]:
        rows = await asyncio.to_thread(
            lambda: self._store.list_files(project_id, purpose=purpose, after=after, limit=limit + 1)
        )
        return rows[:limit], len(rows) > limit

    async def content(self, project_id: str, file_id: str) -> tuple[FileRecord, Path]:
        record = await self.get(project_id, file_id)
        return record, self.path(file_id)

    async def delete(self, project_id: str, file_id: str) -> None:
        await self.get(project_id, file_id)
        if await asyncio.to_thread(self._store.file_in_use, project_id, file_id):
            raise ConflictError(f"file {file_id!r} is the input of a running batch", code="file_in_use")
        await asyncio.to_thread(self._store.delete_file, project_id, file_id)
        await asyncio.to_thread(self.path(file_id).unlink, missing_ok=True)


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


def _joined(lines: Iterable[bytes]) -> Iterator[bytes]:
    buf = bytearray()
    for line in lines:
        buf += line + b"\n"
        if len(buf) >= CHUNK:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


class LineReader:
    """Non-blank lines ``(line_no, text)`` of a file, read ``count`` at a time (call ``read`` in a worker thread).
    ``line_no`` is the 0-based physical line number: stable across restarts, so it keys a batch's results."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), the reader outlives one call
        self._line_no = -1

    def read(self, count: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while len(out) < count:
            line = self._file.readline()
            if not line:
                break
            self._line_no += 1
            if line.strip():
                out.append((self._line_no, line.rstrip(b"\r\n")))
        return out

    def close(self) -> None:
        self._file.close()
